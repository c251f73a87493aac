#pragma once
// What the start of an executable says about how it is loaded: an ELF program with a PT_INTERP program
// header runs under the dynamic loader (which honours LD_PRELOAD); one without is static. Pure.

#include <string_view>

namespace preforkctl::plan {

enum class ElfLinking {
    not_elf,   // a script, or too short or damaged to tell
    dynamic,   // has an interpreter (ld.so)
    static_,   // no interpreter: LD_PRELOAD is never read
};

/// Classifies `head`, the first bytes of a file (the ELF header and the program header table must lie in
/// them; 64 KiB is plenty for any real executable). 32- and 64-bit, either byte order.
ElfLinking classify_elf(std::string_view head);

}  // namespace preforkctl::plan
