//! Section and symbol sizes of the firmware images the device tests build.

use std::collections::BTreeMap;
use std::path::Path;

/// A 32-bit little-endian ELF: section name → (index, size), and the symbols.
pub struct Elf {
    /// Section name → (index, size).
    pub sections: BTreeMap<String, (usize, u64)>,
    /// (name, section index, size)
    pub symbols: Vec<(String, usize, u64)>,
}

impl Elf {
    /// Reads the ELF at `path`; panics, naming it, when it is not a 32-bit little-endian ELF.
    pub fn read(path: &Path) -> Self {
        let b = std::fs::read(path).expect("read ELF");
        assert!(
            b.len() > 52 && &b[..4] == b"\x7fELF" && b[4] == 1 && b[5] == 1,
            "{} is not a 32-bit little-endian ELF",
            path.display()
        );
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
        let cstr = |o: usize| {
            let end = b[o..].iter().position(|&c| c == 0).unwrap_or(0);
            String::from_utf8_lossy(&b[o..o + end]).into_owned()
        };
        let (shoff, shentsize, shnum, shstrndx) =
            (u32_at(0x20), u16_at(0x2E), u16_at(0x30), u16_at(0x32));
        let header = |i: usize| shoff + i * shentsize;
        let shstrtab = u32_at(header(shstrndx) + 0x10);
        let mut sections = BTreeMap::new();
        let mut symbols = Vec::new();
        for i in 0..shnum {
            let h = header(i);
            let name = cstr(shstrtab + u32_at(h));
            sections.insert(name, (i, u32_at(h + 0x14) as u64));
            if u32_at(h + 4) == 2 {
                // SHT_SYMTAB: 16-byte entries; sh_link names the string table.
                let (off, size) = (u32_at(h + 0x10), u32_at(h + 0x14));
                let strtab = u32_at(header(u32_at(h + 0x18)) + 0x10);
                for s in (off..off + size).step_by(16) {
                    let name = cstr(strtab + u32_at(s));
                    symbols.push((name, u16_at(s + 14), u32_at(s + 8) as u64));
                }
            }
        }
        Self { sections, symbols }
    }

    /// The size of section `s` (0 when there is none).
    pub fn size(&self, s: &str) -> u64 {
        self.sections.get(s).map_or(0, |v| v.1)
    }

    /// `.vector_table + .text + .rodata + .data`, and the RP2040's `.boot2`.
    pub fn flash(&self) -> u64 {
        [".boot2", ".vector_table", ".text", ".rodata", ".data"]
            .iter()
            .map(|s| self.size(s))
            .sum()
    }

    /// `.data + .bss + .uninit`.
    pub fn static_ram(&self) -> u64 {
        [".data", ".bss", ".uninit"]
            .iter()
            .map(|s| self.size(s))
            .sum()
    }

    /// The flash and static RAM, section by section, in words.
    pub fn describe(&self) -> String {
        format!(
            "flash {} B (.vector_table {} + .text {} + .rodata {} + .data {}), static RAM {} B \
             (.data {} + .bss {} + .uninit {})",
            self.flash(),
            self.size(".vector_table"),
            self.size(".text"),
            self.size(".rodata"),
            self.size(".data"),
            self.static_ram(),
            self.size(".data"),
            self.size(".bss"),
            self.size(".uninit"),
        )
    }

    /// Flash by origin, from the sizes of the symbols in the flash sections (mangled names;
    /// code inlined into a caller counts as the caller's). The model file is the constant
    /// behind `model::FILE`, of exactly the file's size.
    pub fn breakdown(&self, model_bytes: u64) -> BTreeMap<&'static str, u64> {
        let flash: Vec<usize> = [".vector_table", ".text", ".rodata", ".data"]
            .iter()
            .filter_map(|s| self.sections.get(*s).map(|v| v.0))
            .collect();
        let mut by = BTreeMap::new();
        let mut model_seen = false;
        for (name, sec, size) in &self.symbols {
            if !flash.contains(sec) || *size == 0 {
                continue;
            }
            let origin = if *size == model_bytes && !model_seen && name.contains("FILE") {
                model_seen = true;
                "model file"
            } else if name.contains("flow_core") || name.contains("5model4load") {
                // `model::load` is `Model::parse` and the flow's construction, inlined.
                "flow-core"
            } else if name.contains("4libm") {
                "libm"
            } else if name.contains("postcard") || name.contains("serde") {
                "postcard/serde"
            } else if name.contains("3crc") {
                "crc"
            } else if name.contains("rand_pcg") || name.contains("rand_core") {
                "rand"
            } else if ["__INTERRUPTS", "__EXCEPTIONS", "__RESET_VECTOR"].contains(&name.as_str()) {
                "vector table"
            } else if name.contains("rust_begin_unwind") {
                "firmware and runtime"
            } else if name.contains("compiler_builtins") || name.starts_with("__") {
                "compiler-builtins"
            } else if name.contains("4core") {
                "core"
            } else if name.starts_with(".Lanon") || name.starts_with(".L") {
                "constants"
            } else {
                "firmware and runtime"
            };
            *by.entry(origin).or_insert(0) += size;
        }
        by
    }
}
