#!/usr/bin/env python3
"""fio1.py <dir> <job> [server_pid] -> one JSON line: MiB/s, IOPS, loadavg, server CPU s."""
import json, subprocess, sys, os, time
d, job = sys.argv[1], sys.argv[2]
pid = sys.argv[3] if len(sys.argv) > 3 else None
f = os.path.join(d, 'fio.dat')
common = ['fio', '--name=t', f'--filename={f}', '--size=1G', '--ioengine=libaio', '--output-format=json', '--group_reporting']
J = {
 'sr_d':  ['--rw=read', '--bs=1M', '--iodepth=16', '--direct=1', '--time_based', '--runtime=8'],
 'sw_d':  ['--rw=write', '--bs=1M', '--iodepth=16', '--direct=1', '--time_based', '--runtime=8'],
 'sr_b':  ['--rw=read', '--bs=1M', '--iodepth=16', '--direct=0'],
 'sw_b':  ['--rw=write', '--bs=1M', '--iodepth=16', '--direct=0', '--end_fsync=1'],
 'rr':    ['--rw=randread', '--bs=4k', '--iodepth=16', '--direct=1', '--time_based', '--runtime=8'],
 'rw':    ['--rw=randwrite', '--bs=4k', '--iodepth=16', '--direct=1', '--time_based', '--runtime=8'],
}
def cpu(p):
    if not p: return 0.0
    t = 0
    for tid in os.listdir(f'/proc/{p}/task'):
        try:
            s = open(f'/proc/{p}/task/{tid}/stat').read().rsplit(')',1)[1].split()
            t += int(s[11]) + int(s[12])
        except FileNotFoundError: pass
    return t / os.sysconf('SC_CLK_TCK')
if not os.path.exists(f) or os.path.getsize(f) < (1<<30):
    subprocess.run(common + ['--rw=write', '--bs=1M', '--direct=1', '--iodepth=16'], check=True, capture_output=True)
if job.endswith('_b'):
    subprocess.run(['sync']); open('/proc/sys/vm/drop_caches','w').write('3\n')
load = open('/proc/loadavg').read().split()[0]
c0 = cpu(pid); t0 = time.time()
out = subprocess.run(common + J[job], check=True, capture_output=True, text=True).stdout
c1 = cpu(pid); t1 = time.time()
r = json.loads(out[out.index('{'):])['jobs'][0]
side = r['read'] if 'r' in job.split('_')[0][1:] or job in ('sr_d','sr_b','rr') else r['write']
side = r['read'] if job in ('sr_d','sr_b','rr') else r['write']
gib = side['io_bytes'] / (1<<30)
print(json.dumps({'job': job, 'mibs': round(side['bw_bytes']/(1<<20),1), 'iops': round(side['iops']), 'load': load,
   'srv_cpu_s_per_gib': round((c1-c0)/gib, 3) if pid and gib else None,
   'fio_cpu_pct': round(r['usr_cpu']+r['sys_cpu'],1), 'wall': round(t1-t0,1)}))
