#!/usr/bin/env python3
"""ab.py label pairs jobs 'A-name:A-shell' 'B-name:B-shell' [...] : runs configs in alternation."""
import json, os, subprocess, sys, statistics
# Paths: PERF_DIR (default /tmp/perf) holds a.vol, mnt/ (vault) and pmnt/ (plain); see bench/RESULTS.md,
# issue 14 part 3. The CLI is this checkout's dist/.
PERF = os.environ.get('PERF_DIR', '/tmp/perf')
CLI = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'dist', 'src', 'cli', 'main.js')
label, pairs, jobs = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(',')
cfgs = [a.split(':',1) for a in sys.argv[4:]]
def pid():
    out = subprocess.run(['node',CLI,'list','--json'], capture_output=True, text=True,
        env={'VAULT_RUN_DIR':'/run/vault-perf','PATH':'/usr/sbin:/usr/bin:/sbin:/bin'}).stdout
    v = [x for x in json.loads(out) if x['mountpoint']==PERF + '/mnt']
    return str(v[0]['serverPid']) if v else ''
res = {c[0]:{j:[] for j in jobs} for c in cfgs}
log = open(f'{PERF}/ab-{label}.jsonl','a')
for p in range(pairs):
    for name, sh in cfgs:
        if sh: subprocess.run(sh, shell=True, check=True)
        target = PERF + '/pmnt' if name.startswith('plain') else PERF + '/mnt'
        sp = '' if name.startswith('plain') else pid()
        for j in jobs:
            r = json.loads(subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fio1.py'), target, j] + ([sp] if sp else []), capture_output=True, text=True, check=True).stdout)
            r.update(cfg=name, pair=p); log.write(json.dumps(r)+'\n'); log.flush()
            res[name][j].append(r)
            print(name, p, j, r['mibs'], r['iops'], r['load'], r['srv_cpu_s_per_gib'], flush=True)
print('== summary', label)
for j in jobs:
    for name,_ in cfgs:
        key = 'iops' if j in ('rr','rw') else 'mibs'
        v = [r[key] for r in res[name][j]]; c = [r['srv_cpu_s_per_gib'] for r in res[name][j] if r['srv_cpu_s_per_gib'] is not None]
        print(f"{j:5} {name:12} median {statistics.median(v):9.1f} {key}  range {min(v):.0f}-{max(v):.0f}  all {v}  srvCPU/GiB {statistics.median(c) if c else '-'}")
