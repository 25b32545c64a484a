// Minimal types for fuse-native 2.2 (the package ships none): only what vault uses.
declare module 'fuse-native' {
  class Fuse {
    constructor(mnt: string, ops: object, opts?: Record<string, unknown>);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err?: Error | null) => void): void;
    _fuseOptions(): string;
    static ENOENT: number;
    static ENOTDIR: number;
    static EROFS: number;
    static EIO: number;
    static ENOSPC: number;
    static EFBIG: number;
    static EPERM: number;
    static EINVAL: number;
    static unmount(mnt: string, cb: (err?: Error | null) => void): void;
  }
  export default Fuse;
}
