"""Flash and RAM of a firmware ELF (pyelftools).

flash = .text + .rodata + .data (everything loaded from flash),
ram   = .data + .bss (+ the measured stack peak, added by the caller).
Sections are classified by flags: allocated and not writable -> flash;
writable with contents (PROGBITS) -> flash and RAM; writable NOBITS -> RAM.
The stack/heap reservation sections (named like ``.stack``/``.heap``) are
reported apart, since the stack is measured by painting instead.
"""

from __future__ import annotations

from pathlib import Path

SHF_WRITE, SHF_ALLOC = 0x1, 0x2


def sizes(elf_path, symbols=()) -> dict:
    """Section sizes of ``elf_path``, and where and how large ``symbols`` (and ``__stack_size``) are."""
    from elftools.elf.elffile import ELFFile

    out = {"text": 0, "rodata": 0, "data": 0, "bss": 0, "stack_reserved": 0, "sections": {}}
    spans = []  # (start, end, name, in flash) of the allocated sections
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        for s in elf.iter_sections():
            flags, size, name = s["sh_flags"], s["sh_size"], s.name
            if not flags & SHF_ALLOC or size == 0:
                continue
            out["sections"][name] = size
            spans.append((s["sh_addr"], s["sh_addr"] + size, name, not flags & SHF_WRITE))
            if name.startswith((".stack", ".heap")):
                out["stack_reserved"] += size
            elif not flags & SHF_WRITE:
                out["text" if s["sh_flags"] & 0x4 else "rodata"] += size  # SHF_EXECINSTR
            elif s["sh_type"] == "SHT_NOBITS":
                out["bss"] += size
            else:
                out["data"] += size
        sym = elf.get_section_by_name(".symtab")
        out["symbols"] = {}
        if sym is not None:
            for name in (*symbols, "__stack_size"):
                hit = sym.get_symbol_by_name(name)
                if hit:
                    at = hit[0]["st_value"]
                    where = next((sp for sp in spans if sp[0] <= at < sp[1]), None)
                    out["symbols"][name] = {
                        "size": hit[0]["st_size"],
                        "value": at,
                        "section": where[2] if where else None,
                        "read_only": bool(where and where[3]),
                    }  # flash, not copied to RAM
    out["flash"] = out["text"] + out["rodata"] + out["data"]
    out["ram_static"] = out["data"] + out["bss"]
    out["path"] = str(Path(elf_path))
    return out
