// Reading what an ELF file needs at run time (DT_NEEDED, DT_RUNPATH). Pure: Buffer in, names out.

/** The dynamic dependencies of an ELF64 little-endian file, or null if it is not one (or static). */
export function elfNeeded(buf: Buffer): { needed: string[]; runpath: string[]; interp: string | null } | null {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return null;
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  let dyn: { off: number; size: number } | null = null;
  let interp: string | null = null;
  const loads: { vaddr: number; off: number; filesz: number }[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (p + 56 > buf.length) return null;
    const type = buf.readUInt32LE(p);
    const off = Number(buf.readBigUInt64LE(p + 8));
    const vaddr = Number(buf.readBigUInt64LE(p + 16));
    const filesz = Number(buf.readBigUInt64LE(p + 32));
    if (type === 1) loads.push({ vaddr, off, filesz }); // PT_LOAD
    if (type === 2) dyn = { off, size: filesz }; // PT_DYNAMIC
    if (type === 3) interp = buf.toString('latin1', off, off + filesz).replace(/\0.*$/, ''); // PT_INTERP
  }
  if (!dyn) return { needed: [], runpath: [], interp };
  // DT_STRTAB is a virtual address: map it to a file offset through the PT_LOAD segments.
  const toOff = (va: number) => {
    const l = loads.find((x) => va >= x.vaddr && va < x.vaddr + x.filesz);
    return l ? va - l.vaddr + l.off : -1;
  };
  const entries: [number, number][] = [];
  for (let p = dyn.off; p + 16 <= dyn.off + dyn.size && p + 16 <= buf.length; p += 16) {
    const tag = Number(buf.readBigInt64LE(p));
    if (tag === 0) break;
    entries.push([tag, Number(buf.readBigUInt64LE(p + 8))]);
  }
  const strtab = toOff(entries.find(([t]) => t === 5)?.[1] ?? -1); // DT_STRTAB
  if (strtab < 0) return null;
  const str = (o: number) => {
    const s = strtab + o;
    const e = buf.indexOf(0, s);
    return buf.toString('utf8', s, e < 0 ? buf.length : e);
  };
  const needed = entries.filter(([t]) => t === 1).map(([, v]) => str(v)); // DT_NEEDED
  // DT_RUNPATH, DT_RPATH
  const runpath = entries.filter(([t]) => t === 29 || t === 15).flatMap(([, v]) => str(v).split(':'));
  return { needed, runpath, interp };
}
