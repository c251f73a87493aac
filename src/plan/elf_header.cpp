#include "plan/elf_header.hpp"

#include <cstddef>
#include <cstdint>

namespace preforkctl::plan {

namespace {

constexpr std::uint32_t kProgramInterpreter = 3;  // PT_INTERP

// Reads a `size`-byte unsigned integer at `offset` in the file's byte order; false when it is outside `head`.
bool read_unsigned(std::string_view head, std::uint64_t offset, std::size_t size, bool big_endian, std::uint64_t& value) {
    if (offset > head.size() || head.size() - offset < size) return false;
    value = 0;
    for (std::size_t i = 0; i < size; ++i) {
        const auto byte = static_cast<unsigned char>(head[static_cast<std::size_t>(offset) + (big_endian ? i : size - 1 - i)]);
        value = (value << 8) | byte;
    }
    return true;
}

}  // namespace

ElfLinking classify_elf(std::string_view head) {
    if (head.size() < 16 || head.substr(0, 4) != "\x7f" "ELF") return ElfLinking::not_elf;
    const bool wide = head[4] == 2;  // EI_CLASS: 1 = 32-bit, 2 = 64-bit
    const bool big_endian = head[5] == 2;  // EI_DATA: 1 = little, 2 = big
    if ((head[4] != 1 && head[4] != 2) || (head[5] != 1 && head[5] != 2)) return ElfLinking::not_elf;
    // e_phoff, e_phentsize and e_phnum sit at different offsets in the two classes.
    std::uint64_t table = 0;
    std::uint64_t entry_size = 0;
    std::uint64_t entries = 0;
    const bool header_read = wide ? read_unsigned(head, 32, 8, big_endian, table) &&
                                        read_unsigned(head, 54, 2, big_endian, entry_size) &&
                                        read_unsigned(head, 56, 2, big_endian, entries)
                                  : read_unsigned(head, 28, 4, big_endian, table) &&
                                        read_unsigned(head, 42, 2, big_endian, entry_size) &&
                                        read_unsigned(head, 44, 2, big_endian, entries);
    if (!header_read || entry_size < 4) return ElfLinking::not_elf;
    for (std::uint64_t i = 0; i < entries; ++i) {
        std::uint64_t type = 0;
        if (!read_unsigned(head, table + i * entry_size, 4, big_endian, type)) return ElfLinking::not_elf;
        if (type == kProgramInterpreter) return ElfLinking::dynamic;
    }
    return ElfLinking::static_;
}

}  // namespace preforkctl::plan
