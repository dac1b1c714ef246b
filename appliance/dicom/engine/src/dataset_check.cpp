// The native structural check (see dataset_check.hpp): a line-by-line port of the walk in
// appliance/dicom/dataset_check.py, with its messages. The file is mapped read-only; every
// read goes through Bytes, which checks it against the mapping (the walk's own checks come
// first, so a failed read can only mean a bug here: the file is then deferred to Python).
#include "dataset_check.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>

namespace engine {

namespace {

constexpr uint64_t kUndefined = 0xFFFFFFFFu;
constexpr uint32_t kItem = 0xFFFEE000u;
constexpr uint32_t kItemEnd = 0xFFFEE00Du;
constexpr uint32_t kSequenceEnd = 0xFFFEE0DDu;
constexpr uint32_t kPixelData = 0x7FE00010u;
constexpr uint32_t kSamples = 0x00280002u, kPhotometric = 0x00280004u, kFrames = 0x00280008u,
                   kRows = 0x00280010u, kColumns = 0x00280011u, kBits = 0x00280100u;

constexpr uint16_t vr_code(char a, char b) {
    return static_cast<uint16_t>(static_cast<unsigned char>(a) << 8 |
                                 static_cast<unsigned char>(b));
}
constexpr uint16_t kSQ = vr_code('S', 'Q'), kUN = vr_code('U', 'N'), kOB = vr_code('O', 'B'),
                   kOW = vr_code('O', 'W');

//! The data set does not parse: the message the Python check gives.
struct Malformed {
    std::string reason;
};
//! Not decided here: the Python check decides.
struct Deferred {
    std::string reason;
};

std::string tag_text(uint32_t tag) {
    char text[16];
    std::snprintf(text, sizeof(text), "(%04X,%04X)", tag >> 16, tag & 0xFFFFu);
    return text;
}

std::string at(uint64_t pos) { return " at offset " + std::to_string(pos); }

//! Python's repr() of a bytes object.
std::string bytes_repr(const std::string& raw) {
    const bool single = raw.find('\'') != std::string::npos;
    const bool dbl = raw.find('"') != std::string::npos;
    const char quote = single && !dbl ? '"' : '\'';
    std::string out = std::string("b") + quote;
    for (const char ch : raw) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == quote || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (ch == '\t') {
            out += "\\t";
        } else if (ch == '\n') {
            out += "\\n";
        } else if (ch == '\r') {
            out += "\\r";
        } else if (c < 0x20 || c >= 0x7F) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "\\x%02x", c);
            out += hex;
        } else {
            out += ch;
        }
    }
    return out + quote;
}

//! bytes.decode(errors="replace") for ASCII-or-not bytes: each byte >= 0x80 becomes U+FFFD.
std::string decode_replace(const std::string& raw) {
    std::string out;
    for (const char ch : raw) {
        if (static_cast<unsigned char>(ch) >= 0x80) {
            out += "\xEF\xBF\xBD";
        } else {
            out += ch;
        }
    }
    return out;
}

std::string to_text(unsigned __int128 value) {
    if (value == 0) return "0";
    std::string digits;
    while (value > 0) {
        digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
        value /= 10;
    }
    return digits;
}

//! A read-only mapping of a whole file; empty when the file is empty.
class MappedFile {
public:
    explicit MappedFile(const std::string& path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) throw Deferred{"cannot open the file"};
        // A constructor that throws runs no destructor: the descriptor is closed here.
        struct stat info {};
        if (::fstat(fd_, &info) != 0) fail("cannot stat the file");
        size_ = static_cast<uint64_t>(info.st_size);
        if (size_ == 0) return;
        void* map = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
        if (map == MAP_FAILED) fail("cannot map the file");
        data_ = static_cast<const unsigned char*>(map);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile() {
        if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
        if (fd_ >= 0) ::close(fd_);
    }
    const unsigned char* data() const { return data_; }
    uint64_t size() const { return size_; }

private:
    [[noreturn]] void fail(const char* why) {
        ::close(fd_);
        throw Deferred{why};
    }
    int fd_ = -1;
    const unsigned char* data_ = nullptr;
    uint64_t size_ = 0;
};

//! Bounds-checked reads in one byte order.
class Bytes {
public:
    Bytes(const unsigned char* data, uint64_t size, bool little)
        : data_(data), size_(size), little_(little) {}
    uint64_t size() const { return size_; }
    uint16_t u16(uint64_t pos) const {
        need(pos, 2);
        const unsigned char* p = data_ + pos;
        return static_cast<uint16_t>(little_ ? p[0] | p[1] << 8 : p[0] << 8 | p[1]);
    }
    uint32_t u32(uint64_t pos) const {
        need(pos, 4);
        const unsigned char* p = data_ + pos;
        const uint32_t a = p[0], b = p[1], c = p[2], d = p[3];
        return little_ ? a | b << 8 | c << 16 | d << 24 : a << 24 | b << 16 | c << 8 | d;
    }
    uint16_t vr(uint64_t pos) const {
        need(pos, 2);
        return static_cast<uint16_t>(data_[pos] << 8 | data_[pos + 1]);
    }
    std::string copy(uint64_t pos, uint64_t length) const {
        need(pos, length);
        return std::string(reinterpret_cast<const char*>(data_ + pos), length);
    }

private:
    void need(uint64_t pos, uint64_t length) const {
        if (pos > size_ || length > size_ - pos) throw Deferred{"read past the end"};
    }
    const unsigned char* data_;
    uint64_t size_;
    bool little_;
};

//! bytes.strip(chars) (`left`) or bytes.rstrip(chars).
std::string strip(const std::string& text, const std::string& chars, bool left) {
    const auto last = text.find_last_not_of(chars);
    if (last == std::string::npos) return "";
    const auto first = left ? text.find_first_not_of(chars) : 0;
    return text.substr(first, last - first + 1);
}

void check_delimiter(const char* kind, const char* misplaced, bool delimited, uint64_t length,
                     uint64_t pos) {
    if (!delimited) {
        throw Malformed{std::string(kind) + " Delimitation Item " + misplaced + at(pos)};
    }
    if (length != 0) {
        throw Malformed{std::string(kind) + " Delimitation Item with length " +
                        std::to_string(length)};
    }
}

//! The Image Pixel sizes seen so far at the top level.
struct PixelSize {
    std::map<uint32_t, uint64_t> seen;  //!< by tag: samples, rows, columns, bits, frames
    bool subsampled = false;
};

class Walker {
public:
    Walker(const Bytes& bytes, const CheckRules& rules, bool native_pixels)
        : bytes_(bytes), rules_(rules), native_pixels_(native_pixels) {}

    //! Elements from `pos` up to exactly `limit`, or (`delimited`) up to an Item Delimitation
    //! Item before it; the position after the last byte walked.
    uint64_t data_set(uint64_t pos, uint64_t limit, bool delimited, bool implicit, bool top,
                      unsigned depth) {
        while (true) {
            if (pos == limit) {
                if (delimited) {
                    throw Malformed{"item of undefined length has no Item Delimitation Item "
                                    "before the end"};
                }
                return pos;
            }
            if (pos + 8 > limit) {
                throw Malformed{std::to_string(limit - pos) +
                                " stray bytes after the last element (offset " +
                                std::to_string(pos) + ")"};
            }
            const uint32_t group = bytes_.u16(pos), element = bytes_.u16(pos + 2);
            const uint32_t tag = group << 16 | element;
            bool has_vr = false;
            uint16_t vr = 0;
            uint64_t length = 0, value = pos + 8;
            if (implicit) {
                length = bytes_.u32(pos + 4);
            } else {
                has_vr = true;
                vr = bytes_.vr(pos + 4);
                if (rules_.long_vrs.count(vr) != 0) {
                    if (pos + 12 > limit) throw Malformed{"element header cut" + at(pos)};
                    length = bytes_.u32(pos + 8);
                    value = pos + 12;
                } else if (rules_.short_vrs.count(vr) != 0) {
                    length = bytes_.u16(pos + 6);
                } else if (group == 0xFFFE) {
                    length = bytes_.u32(pos + 4);
                } else {
                    throw Malformed{"element " + tag_text(tag) + at(pos) + " has no valid VR (" +
                                    bytes_repr(bytes_.copy(pos + 4, 2)) +
                                    "): not encoded in the transfer syntax's VR encoding"};
                }
            }
            if (tag == kItemEnd) {
                check_delimiter("Item", "out of place", delimited, length, pos);
                return value;
            }
            if (group == 0xFFFE) throw Malformed{tag_text(tag) + " outside a sequence" + at(pos)};
            if (group == 0x0000 || group == 0x0002) {
                throw Malformed{"command or File Meta element " + tag_text(tag) +
                                " inside the data set" + at(pos)};
            }
            if (length == kUndefined) {
                pos = undefined(tag, has_vr, vr, value, limit, implicit, depth);
                continue;
            }
            const uint64_t end = value + length;
            if (end > limit) {
                throw Malformed{"element " + tag_text(tag) + at(pos) + " has length " +
                                std::to_string(length) + ", " + std::to_string(end - limit) +
                                " bytes past the end of its " +
                                (top ? "data set" : "item or sequence")};
            }
            if ((has_vr && vr == kSQ) || (!has_vr && rules_.is_sequence(tag))) {
                sequence(value, end, false, implicit, false, depth + 1);
            } else if (top) {
                top_level(tag, value, length);
            }
            pos = end;
        }
    }

    std::map<uint32_t, std::string> values;

private:
    //! An element of undefined length: a sequence, a UN sequence or encapsulated pixels.
    uint64_t undefined(uint32_t tag, bool has_vr, uint16_t vr, uint64_t value, uint64_t limit,
                       bool implicit, unsigned depth) {
        if (has_vr && vr == kUN) {  // PS3.5 6.2.2: its items are implicit VR little endian
            return sequence(value, limit, true, true, false, depth + 1);
        }
        if ((has_vr && vr == kSQ) || (!has_vr && tag != kPixelData)) {
            return sequence(value, limit, true, implicit, false, depth + 1);
        }
        if ((has_vr && (vr == kOB || vr == kOW)) || (!has_vr && tag == kPixelData)) {
            return sequence(value, limit, true, implicit, true, depth + 1);
        }
        const std::string vr_bytes{static_cast<char>(vr >> 8), static_cast<char>(vr & 0xFF)};
        throw Malformed{"element " + tag_text(tag) + " (" + decode_replace(vr_bytes) +
                        ") has undefined length, allowed only for SQ, UN and pixel data"};
    }

    //! Items (data sets, or opaque `fragments` of encapsulated pixel data).
    uint64_t sequence(uint64_t pos, uint64_t limit, bool delimited, bool implicit,
                      bool fragments, unsigned depth) {
        if (depth > kMaxDepth) throw Deferred{"sequences nested deeper than the native limit"};
        while (true) {
            if (pos == limit) {
                if (delimited) {
                    throw Malformed{"sequence of undefined length has no Sequence "
                                    "Delimitation Item before the end"};
                }
                return pos;
            }
            if (pos + 8 > limit) throw Malformed{"item header cut" + at(pos)};
            const uint32_t tag = static_cast<uint32_t>(bytes_.u16(pos)) << 16 | bytes_.u16(pos + 2);
            const uint64_t length = bytes_.u32(pos + 4);
            if (tag == kSequenceEnd) {
                check_delimiter("Sequence", "in a sequence of defined length", delimited, length,
                                pos);
                return pos + 8;
            }
            if (tag != kItem) {
                throw Malformed{tag_text(tag) + " where an item was expected" + at(pos)};
            }
            const uint64_t start = pos + 8;
            if (length == kUndefined) {
                if (fragments) throw Malformed{"pixel data fragment of undefined length" + at(pos)};
                pos = data_set(start, limit, true, implicit, false, depth);
                continue;
            }
            const uint64_t end = start + length;
            if (end > limit) {
                throw Malformed{"item" + at(pos) + " has length " + std::to_string(length) + ", " +
                                std::to_string(end - limit) +
                                " bytes past the end of its sequence"};
            }
            if (!fragments) data_set(start, end, false, implicit, false, depth);
            pos = end;
        }
    }

    //! Copies a wanted value; notes the Image Pixel sizes and checks native pixel data
    //! against them.
    void top_level(uint32_t tag, uint64_t value, uint64_t length) {
        if (rules_.wanted.count(tag) != 0) values[tag] = bytes_.copy(value, length);
        if (tag == kFrames) {
            const std::string text = strip(bytes_.copy(value, length), std::string(" \0", 2), true);
            frames(text);
        } else if (tag == kPhotometric) {  // 4:2:2 / 4:2:0 subsampled colour is not sized
            if (bytes_.copy(value, length).find("42") != std::string::npos) size_.subsampled = true;
        } else if (tag == kSamples || tag == kRows || tag == kColumns || tag == kBits) {
            if (length == 2) size_.seen[tag] = bytes_.u16(value);
        } else if (tag == kPixelData && native_pixels_) {
            pixel_data(length);
        }
    }

    void frames(const std::string& text) {
        if (text.empty()) return;
        for (const char ch : text) {
            if (ch < '0' || ch > '9') return;
        }
        if (text.size() > 18) throw Deferred{"Number of Frames too long for the native check"};
        size_.seen[kFrames] = std::stoull(text);
    }

    void pixel_data(uint64_t length) {
        const auto& seen = size_.seen;
        if (seen.count(kRows) == 0 || seen.count(kColumns) == 0 || seen.count(kBits) == 0 ||
            size_.subsampled) {
            return;
        }
        auto get = [&](uint32_t tag, uint64_t otherwise) {
            const auto found = seen.find(tag);
            return found == seen.end() ? otherwise : found->second;
        };
        uint64_t frames = get(kFrames, 1);
        if (frames < 1) frames = 1;
        // rows, columns, samples, bits < 2^16 each, frames < 10^18: under 2^124
        const unsigned __int128 bits = static_cast<unsigned __int128>(
            get(kRows, 0) * get(kColumns, 0) * get(kSamples, 1) * get(kBits, 0)) * frames;
        const unsigned __int128 expected = (bits + 7) / 8;
        if (length < expected) {
            throw Malformed{"pixel data is " + std::to_string(length) + " bytes, " +
                            to_text(expected - length) + " short of the " + to_text(expected) +
                            " that Rows, Columns, Samples, Bits Allocated and Frames call for"};
        }
    }

    const Bytes& bytes_;
    const CheckRules& rules_;
    bool native_pixels_;
    PixelSize size_;
};

//! Skips the preamble and the File Meta group: (data set offset, transfer syntax).
std::pair<uint64_t, std::string> file_meta_end(const Bytes& meta, const unsigned char* data,
                                               const CheckRules& rules) {
    const uint64_t size = meta.size();
    if (size < 132 || std::memcmp(data + 128, "DICM", 4) != 0) {
        throw Malformed{"no DICOM file preamble"};
    }
    uint64_t pos = 132;
    std::string syntax;
    while (pos + 8 <= size && meta.u16(pos) == 0x0002) {
        const uint16_t element = meta.u16(pos + 2);
        uint64_t length = meta.u16(pos + 6), value = pos + 8;
        if (rules.long_vrs.count(meta.vr(pos + 4)) != 0) {
            // Python's struct reads past the end here and fails outside its own checks.
            if (pos + 12 > size) throw Deferred{"File Meta element header cut"};
            length = meta.u32(pos + 8);
            value = pos + 12;
        }
        if (value + length > size) throw Malformed{"File Meta Information runs past the end"};
        if (element == 0x0010) {
            syntax = strip(meta.copy(value, length), std::string("\0 ", 2), false);
        }
        pos = value + length;
    }
    if (syntax.empty()) throw Malformed{"no Transfer Syntax UID in the File Meta Information"};
    return {pos, syntax};
}

}  // namespace

bool CheckRules::is_sequence(uint32_t tag) const {
    if (sequence_tags.count(tag) != 0) return true;
    if (other_tags.count(tag) != 0) return false;
    if ((tag >> 16) % 2 == 1) return false;  // private: not in the dictionary
    for (const auto& repeater : repeaters) {
        if ((tag & repeater.mask) == repeater.value) return repeater.sequence;
    }
    return false;
}

CheckResult check_file(const std::string& path, const CheckRules& rules) {
    CheckResult result;
    try {
        const MappedFile file(path);
        if (file.size() == 0) throw Malformed{"empty file"};
        const Bytes meta(file.data(), file.size(), true);
        const auto [start, syntax] = file_meta_end(meta, file.data(), rules);
        const auto rule = rules.syntaxes.find(syntax);
        if (rule == rules.syntaxes.end()) {
            throw Deferred{"transfer syntax not checked natively: " + syntax};
        }
        const Bytes data(file.data(), file.size(), rule->second.little);
        Walker walker(data, rules, !rule->second.encapsulated);
        walker.data_set(start, file.size(), false, rule->second.implicit, true, 0);
        result.kind = CheckResult::kParsed;
        result.transfer_syntax = syntax;
        for (auto& [tag, value] : walker.values) result.values.emplace_back(tag, std::move(value));
    } catch (const Malformed& malformed) {
        result.kind = CheckResult::kMalformed;
        result.reason = malformed.reason;
    } catch (const Deferred& deferred) {
        result.kind = CheckResult::kDeferred;
        result.reason = deferred.reason;
    } catch (const std::exception& error) {
        result.kind = CheckResult::kDeferred;
        result.reason = error.what();
    }
    return result;
}

}  // namespace engine
