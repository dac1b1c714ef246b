// Python bindings of the native structural check (see check_bindings.hpp).
#include "check_bindings.hpp"

#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace py = pybind11;

namespace engine {

namespace {

//! Text from a received file as a Python str (bytes that are not UTF-8 as escapes).
py::str file_text(const std::string& text) {
    PyObject* decoded = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()),
                                             "backslashreplace");
    if (decoded == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(decoded);
}

//! CheckRules from Python's tables (see appliance/dicom/native_check.py).
std::shared_ptr<CheckRules> make_rules(
    const std::map<std::string, std::tuple<bool, bool, bool>>& syntaxes,
    const std::vector<uint32_t>& sequence_tags, const std::vector<uint32_t>& other_tags,
    const std::vector<std::tuple<uint32_t, uint32_t, bool>>& repeaters,
    const std::vector<std::string>& long_vrs, const std::vector<std::string>& short_vrs,
    const std::vector<uint32_t>& wanted) {
    auto rules = std::make_shared<CheckRules>();
    for (const auto& [uid, rule] : syntaxes) {
        rules->syntaxes[uid] = {std::get<0>(rule), std::get<1>(rule), std::get<2>(rule)};
    }
    rules->sequence_tags.insert(sequence_tags.begin(), sequence_tags.end());
    rules->other_tags.insert(other_tags.begin(), other_tags.end());
    for (const auto& [mask, value, sequence] : repeaters) {
        rules->repeaters.push_back({mask, value, sequence});
    }
    auto codes = [](const std::vector<std::string>& vrs, std::unordered_set<uint16_t>& out) {
        for (const auto& vr : vrs) {
            if (vr.size() != 2) throw py::value_error("a VR is two characters: " + vr);
            out.insert(static_cast<uint16_t>(static_cast<unsigned char>(vr[0]) << 8 |
                                             static_cast<unsigned char>(vr[1])));
        }
    };
    codes(long_vrs, rules->long_vrs);
    codes(short_vrs, rules->short_vrs);
    rules->wanted.insert(wanted.begin(), wanted.end());
    return rules;
}

}  // namespace

//! A check's verdict for Python (GIL held): ("parsed", transfer syntax, {tag: raw bytes}),
//! ("malformed", reason) or ("deferred", why).
py::tuple check_result(const CheckResult& result) {
    if (result.kind == CheckResult::kParsed) {
        py::dict values;
        for (const auto& [tag, raw] : result.values) values[py::int_(tag)] = py::bytes(raw);
        return py::make_tuple("parsed", file_text(result.transfer_syntax), values);
    }
    const char* kind = result.kind == CheckResult::kMalformed ? "malformed" : "deferred";
    return py::make_tuple(kind, file_text(result.reason));
}

void bind_check(py::module_& module) {
    py::class_<CheckRules, std::shared_ptr<CheckRules>>(
        module, "CheckRules",
        "The native structural check's tables (built by appliance.dicom.native_check).")
        .def(py::init(&make_rules), py::kw_only(), py::arg("syntaxes"),
             py::arg("sequence_tags"), py::arg("other_tags"), py::arg("repeaters"),
             py::arg("long_vrs"), py::arg("short_vrs"), py::arg("wanted"))
        .def("is_sequence", &CheckRules::is_sequence, py::arg("tag"),
             "Whether an implicit VR element of defined length is walked as a sequence.");

    module.def(
        "check_file",
        [](const std::string& path, const std::shared_ptr<CheckRules>& rules) {
            if (!rules) throw py::value_error("no rules");
            CheckResult result;
            {
                py::gil_scoped_release release;
                result = check_file(path, *rules);
            }
            return check_result(result);
        },
        py::arg("path"), py::arg("rules"),
        "The native structural check of a received file: (\"parsed\", transfer syntax, "
        "{tag: raw value}), (\"malformed\", reason) or (\"deferred\", why).");
}

}  // namespace engine
