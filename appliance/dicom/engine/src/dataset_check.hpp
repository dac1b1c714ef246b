// The structural check of a received C-STORE file, natively: the same walk, refusals, messages
// and limits as appliance/dicom/dataset_check.py (every element's tag, VR and length, every
// sequence, item and delimiter, native pixel data against Rows x Columns x ..., the end of the
// data set exactly where the file ends), run by the association's thread on the complete temp
// file before the store callback, without the GIL. The few cases it does not decide itself
// (deflated data sets, a transfer syntax not in its table, nesting deeper than kMaxDepth, a
// File Meta element header cut short, a Number of Frames of more than 18 digits, a file that
// cannot be opened) are "deferred": the Python check decides them, so the verdicts are the
// Python check's by construction.
//
// The tables that decide VRs and sequences (pydicom's data dictionary, its explicit VR length
// classes, its transfer syntaxes) come from Python (appliance/dicom/native_check.py), once.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engine {

//! How a (known, not deflated) transfer syntax encodes its data set.
struct SyntaxRule {
    bool implicit = false;
    bool little = true;
    bool encapsulated = false;
};

//! One entry of pydicom's repeaters dictionary: `tag & mask == value`.
struct RepeaterRule {
    uint32_t mask = 0;
    uint32_t value = 0;
    bool sequence = false;
};

//! Everything the check needs to know, built once from Python's tables.
struct CheckRules {
    std::unordered_map<std::string, SyntaxRule> syntaxes;
    std::unordered_set<uint32_t> sequence_tags;      //!< dictionary tags of VR SQ
    std::unordered_set<uint32_t> other_tags;         //!< dictionary tags of other VRs
    std::vector<RepeaterRule> repeaters;             //!< in the dictionary's order
    std::unordered_set<uint16_t> long_vrs;           //!< explicit VRs with a 32-bit length
    std::unordered_set<uint16_t> short_vrs;          //!< explicit VRs with a 16-bit length
    std::unordered_set<uint32_t> wanted;             //!< top-level tags whose values are copied

    //! In implicit VR, whether a defined-length element is a sequence (as pydicom's
    //! dictionary_VR(tag) == "SQ").
    bool is_sequence(uint32_t tag) const;
};

//! Sequences nested deeper than this are left to the Python check.
constexpr unsigned kMaxDepth = 64;

struct CheckResult {
    enum Kind { kDeferred, kMalformed, kParsed };
    Kind kind = kDeferred;
    std::string reason;           //!< kMalformed: the Python check's message; kDeferred: why
    std::string transfer_syntax;  //!< kParsed
    std::vector<std::pair<uint32_t, std::string>> values;  //!< kParsed: raw, as encoded
};

//! Checks the file at `path` (mapped read-only). Never throws.
CheckResult check_file(const std::string& path, const CheckRules& rules);

}  // namespace engine
