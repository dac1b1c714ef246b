// See store_scu_bindings.hpp. A store's outcome reaches Python as (kind, status, detail) with
// kind one of "answered", "no answer", "stalled", "missing", "unreadable", "no context".
#include "store_scu_bindings.hpp"

#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "store_scu.hpp"

namespace py = pybind11;

namespace engine {

namespace {

py::tuple outcome_tuple(const StoreOutcome& outcome) {
    static const char* const kKinds[] = {"answered", "no answer", "stalled", "missing",
                                         "unreadable", "no context"};
    return py::make_tuple(kKinds[outcome.kind], outcome.status, outcome.detail);
}

//! One store run without the GIL, its outcome as the tuple.
template <typename Store>
py::tuple store_unlocked(Store store) {
    StoreOutcome outcome;
    {
        py::gil_scoped_release unlocked;
        outcome = store();
    }
    return outcome_tuple(outcome);
}

}  // namespace

void bind_store_scu(py::module_& module) {
    py::class_<StoreScu>(module, "StoreScu")
        .def_static(
            "request",
            [](const std::string& host, int port, const std::string& calling_aet,
               const std::string& called_aet,
               const std::vector<std::pair<std::string, std::string>>& contexts,
               long max_receive_pdu, int connection_timeout, int acse_timeout,
               int dimse_timeout) {
                ScuRefusal refusal;
                std::unique_ptr<StoreScu> scu;
                {
                    py::gil_scoped_release unlocked;
                    scu = std::make_unique<StoreScu>(
                        host, port, calling_aet, called_aet, contexts, max_receive_pdu,
                        ScuTimeouts{connection_timeout, acse_timeout, dimse_timeout}, refusal);
                }
                py::dict why;
                why["rejected"] = refusal.rejected;
                why["result"] = refusal.result;
                why["source"] = refusal.source;
                why["reason"] = refusal.reason;
                why["connected"] = refusal.connected;
                why["text"] = refusal.text;
                if (!scu->established()) return py::make_tuple(py::none(), why);
                return py::make_tuple(py::cast(std::move(scu)), why);
            },
            py::kw_only(), py::arg("host"), py::arg("port"), py::arg("calling_aet"),
            py::arg("called_aet"), py::arg("contexts"), py::arg("max_receive_pdu"),
            py::arg("connection_timeout"), py::arg("acse_timeout"), py::arg("dimse_timeout"),
            "(association, why): the association when the peer accepted it, else None and "
            "why: {rejected, result, source, reason, connected, text}.")
        .def_property_readonly("established", &StoreScu::established)
        .def_property_readonly("accepted", &StoreScu::accepted,
                               "[(SOP class, transfer syntax)] the peer accepted.")
        .def("store_file",
             [](StoreScu& self, const std::string& path, const std::string& sop_class,
                const std::string& sop_instance, const std::string& syntax) {
                 return store_unlocked(
                     [&] { return self.store_file(path, sop_class, sop_instance, syntax); });
             },
             py::arg("path"), py::arg("sop_class"), py::arg("sop_instance"),
             py::arg("transfer_syntax"), "A stored file (with File Meta) in `transfer_syntax`.")
        .def("store_data_set",
             [](StoreScu& self, const py::bytes& data, const std::string& sop_class,
                const std::string& sop_instance, const std::string& syntax) {
                 const std::string bytes = data;  // copied under the GIL, sent without it
                 return store_unlocked([&] {
                     return self.store_data_set(bytes, sop_class, sop_instance, syntax);
                 });
             },
             py::arg("data_set"), py::arg("sop_class"), py::arg("sop_instance"),
             py::arg("transfer_syntax"), "A data set (bytes in `transfer_syntax`, no File Meta).")
        .def("release", &StoreScu::release, py::call_guard<py::gil_scoped_release>())
        .def("abort", &StoreScu::abort, py::call_guard<py::gil_scoped_release>());
}

}  // namespace engine
