// The Python face of the engine (pybind11): `appliance.dicom.engine._engine`. The GIL is
// released by every method that waits (start, stop) and by the destructor, and it is taken
// only inside the callbacks built here: the store callback and the log sink. Python objects
// held by native code are kept in shared_ptrs whose deleter takes the GIL, so native threads
// can copy and drop callbacks without it. The native structural check's bindings are in
// check_bindings.cpp, the C-STORE SCU's in store_scu_bindings.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "check_bindings.hpp"
#include "dcmtk_log.hpp"
#include "dimse_status.hpp"
#include "engine.hpp"
#include "store_scu_bindings.hpp"

namespace py = pybind11;

namespace {

constexpr const char* kLoggerName = "appliance.dicom.engine";

//! Keeps the Python thread state of a native thread from its first call into Python until the
//! thread ends (pybind11 would otherwise make and drop one per call). Python's thread-local
//! data (a thread's database connection) then lives as long as the connection's thread and
//! is freed with the thread state when the thread ends, instead of being made per call and
//! never seen to end.
class ThreadStateKeeper {
public:
    ThreadStateKeeper() = default;
    ThreadStateKeeper(const ThreadStateKeeper&) = delete;
    ThreadStateKeeper& operator=(const ThreadStateKeeper&) = delete;
    void keep(py::gil_scoped_acquire& gil) {
        if (kept_) return;
        gil.inc_ref();
        kept_ = true;
    }
    ~ThreadStateKeeper() {
        if (!kept_ || !Py_IsInitialized()) return;
        py::gil_scoped_acquire gil;
        gil.dec_ref();  // the scope's own release then drops the thread state
    }

private:
    bool kept_ = false;
};

thread_local ThreadStateKeeper thread_state_keeper;

//! The GIL for one call into Python from a native thread, its thread state kept.
struct PythonCall {
    py::gil_scoped_acquire gil;
    PythonCall() { thread_state_keeper.keep(gil); }
};

//! A Python object that native threads may hold and drop: released under the GIL.
struct HeldObject {
    py::object object;
    HeldObject() = default;
    HeldObject(const HeldObject&) = delete;
    HeldObject& operator=(const HeldObject&) = delete;
    ~HeldObject() {
        if (!Py_IsInitialized()) {
            object.release();  // the interpreter is gone: nothing left to drop it in
            return;
        }
        py::gil_scoped_acquire gil;
        object = py::object();
    }
};

//! Called with the GIL held.
std::shared_ptr<HeldObject> share(py::object object) {
    auto held = std::make_shared<HeldObject>();
    held->object = std::move(object);
    return held;
}

//! Text from the network (AE titles, UIDs, DCMTK's messages quoting them) as a Python str:
//! bytes that are not UTF-8 are kept visible as escapes instead of failing the call.
py::str peer_text(const std::string& text) {
    PyObject* decoded = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()),
                                             "backslashreplace");
    if (decoded == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(decoded);
}

void log_to_python(int level, const std::string& message) {
    if (!Py_IsInitialized()) return;
    PythonCall call;
    try {
        py::module_::import("logging").attr("getLogger")(kLoggerName).attr("log")(
            level, "%s", peer_text(message));
    } catch (py::error_already_set& error) {
        error.discard_as_unraisable(__func__);
    }
}

//! Tags (an int or a list of ints) from a response's field `name` into `out` (GIL held).
void tags_of(const py::dict& fields, const char* name, std::vector<uint32_t>& out) {
    if (!fields.contains(name) || fields[name].is_none()) return;
    py::object tags = fields[name];
    if (py::isinstance<py::int_>(tags)) tags = py::make_tuple(tags);
    for (const auto& tag : tags) {
        const long long value = tag.cast<long long>();
        if (value < 0 || value > 0xFFFFFFFFLL) throw py::value_error("tag out of range");
        out.push_back(static_cast<uint32_t>(value));
    }
}

//! Error Comment, Offending Element, Error ID and Attribute Identifier List from a
//! response's fields (GIL held).
engine::StatusDetail detail_of(const py::dict& fields) {
    engine::StatusDetail detail;
    if (fields.contains("error_comment") && !fields["error_comment"].is_none()) {
        detail.error_comment = py::str(fields["error_comment"]).cast<std::string>();
    }
    tags_of(fields, "offending_element", detail.offending_elements);
    tags_of(fields, "attribute_identifier_list", detail.attribute_identifiers);
    if (fields.contains("error_id") && !fields["error_id"].is_none()) {
        const long value = fields["error_id"].cast<long>();
        if (value < 0 || value > 0xFFFF) throw py::value_error("error_id out of range");
        detail.error_id = static_cast<int>(value);
    }
    return detail;
}

//! Number of Remaining/Completed/Failed/Warning Sub-operations from a response's fields.
engine::SubOperationCounts counts_of(const py::dict& fields) {
    engine::SubOperationCounts counts;
    auto read = [&](const char* key, int& target) {
        if (!fields.contains(key) || fields[key].is_none()) return;
        const long value = fields[key].cast<long>();
        if (value < 0 || value > 0xFFFF) throw py::value_error(std::string(key) + " out of range");
        target = static_cast<int>(value);
    };
    read("remaining", counts.remaining);
    read("completed", counts.completed);
    read("failed", counts.failed);
    read("warning", counts.warning);
    return counts;
}

//! A handler's responses: an iterator of (status, data set bytes or None), pulled under the GIL.
class PyResponseStream : public engine::ResponseStream {
public:
    explicit PyResponseStream(std::shared_ptr<HeldObject> iterator)
        : iterator_(std::move(iterator)) {}

    bool next(engine::DimseResponse& response) override {
        PythonCall call;
        try {
            PyObject* item = pull();
            if (item == nullptr) {
                if (PyErr_Occurred()) throw py::error_already_set();
                return false;
            }
            py::object answer = py::reinterpret_steal<py::object>(item);
            auto pair = answer.cast<py::tuple>();
            response = engine::DimseResponse{};
            if (pair.size() > 0 && py::isinstance<py::str>(pair[0])) {
                read_sub_operation(pair, response);
                return true;
            }
            if (pair.size() != 2 && pair.size() != 3) {
                throw py::value_error("a response is (status, data set[, fields])");
            }
            const long status = pair[0].cast<long>();
            if (status < 0 || status > 0xFFFF) throw py::value_error("status out of range");
            response.status = static_cast<uint16_t>(status);
            response.has_data_set = !pair[1].is_none();
            response.data_set = response.has_data_set ? std::string(pair[1].cast<py::bytes>())
                                                      : std::string();
            if (pair.size() == 3 && !pair[2].is_none()) {
                auto extra = pair[2].cast<py::dict>();
                if (extra.contains("affected_sop_instance_uid")) {
                    response.affected_sop_instance_uid =
                        extra["affected_sop_instance_uid"].cast<std::string>();
                }
                response.detail = detail_of(extra);
                response.counts = counts_of(extra);
            }
            return true;
        } catch (std::exception& error) {
            log_to_python(40, std::string("request handler failed: ") + error.what());
            response = engine::DimseResponse{};
            response.failed = true;
            return true;
        }
    }

    void reply(uint16_t status) override { reply_ = status; }

    void cancel() override {
        PythonCall call;
        try {
            if (py::hasattr(iterator_->object, "close")) iterator_->object.attr("close")();
        } catch (py::error_already_set& error) {
            error.discard_as_unraisable(__func__);
        }
    }

private:
    //! The next item (a new reference, or nullptr at the end or on an error): with a
    //! sub-operation's status waiting, through the generator's send().
    PyObject* pull() {
        const int status = reply_;
        reply_ = -1;
        PyObject* iterator = iterator_->object.ptr();
        if (status < 0 || !PyObject_HasAttrString(iterator, "send")) return PyIter_Next(iterator);
        PyObject* item = PyObject_CallMethod(iterator, "send", "i", status);
        if (item == nullptr && PyErr_ExceptionMatches(PyExc_StopIteration)) PyErr_Clear();
        return item;
    }

    //! ("store", file path or data set bytes, SOP class, SOP instance, transfer syntax).
    static void read_sub_operation(const py::tuple& item, engine::DimseResponse& response) {
        if (item.size() != 5 || item[0].cast<std::string>() != "store") {
            throw py::value_error("a sub-operation is (\"store\", path or bytes, "
                                  "sop_class_uid, sop_instance_uid, transfer_syntax_uid)");
        }
        response.is_store = true;
        auto& store = response.store;
        if (py::isinstance<py::bytes>(item[1])) {
            store.data_set = item[1].cast<std::string>();
        } else {
            store.path = py::str(py::module_::import("os").attr("fspath")(item[1]))
                             .cast<std::string>();
            if (store.path.empty()) throw py::value_error("an empty path");
        }
        store.sop_class_uid = item[2].cast<std::string>();
        store.sop_instance_uid = item[3].cast<std::string>();
        store.transfer_syntax_uid = item[4].cast<std::string>();
    }

    std::shared_ptr<HeldObject> iterator_;
    int reply_ = -1;  //!< a sub-operation's status for the next pull; -1: none
};

//! An association event as the dict the facade documents (called with the GIL held).
py::dict event_dict(const engine::AssociationEvent& event) {
    static const char* const kKinds[] = {"opened", "established", "ended", "event_outcome"};
    py::dict fields;
    fields["event"] = kKinds[event.kind];
    if (event.kind != engine::AssociationEvent::kOpened) {
        fields["association_id"] = event.association_id;
    }
    fields["peer"] = event.peer;
    if (event.kind == engine::AssociationEvent::kOpened) return fields;
    if (event.kind == engine::AssociationEvent::kEventOutcome) {
        fields["tag"] = event.event_tag;
        fields["delivered"] = event.event_delivered;
        fields["status"] = event.event_status;
        return fields;
    }
    fields["calling_ae"] = peer_text(event.calling_ae);
    fields["called_ae"] = peer_text(event.called_ae);
    py::list contexts;
    for (const auto& context : event.contexts) {
        py::dict entry;
        entry["context_id"] = context.context_id;
        entry["abstract_syntax"] = peer_text(context.abstract_syntax);
        entry["transfer_syntax"] = peer_text(context.transfer_syntax);
        contexts.append(entry);
    }
    fields["contexts"] = contexts;
    if (event.kind == engine::AssociationEvent::kEstablished) return fields;
    py::dict operations;
    for (const auto& [name, count] : event.operations) {
        if (count > 0) operations[py::str(name)] = count;
    }
    fields["operations"] = operations;
    fields["outcome"] = peer_text(event.outcome);
    fields["duration"] = event.duration;
    return fields;
}

engine::EngineCallbacks make_callbacks(py::object on_store, py::object on_request,
                                       py::object on_association,
                                       std::shared_ptr<engine::CheckRules> store_check) {
    engine::EngineCallbacks callbacks;
    callbacks.store_check = std::move(store_check);
    callbacks.log = log_to_python;
    if (!on_association.is_none()) {
        auto callable = share(std::move(on_association));
        callbacks.on_association = [callable](const engine::AssociationEvent& event) {
            PythonCall call;
            try {
                callable->object(event_dict(event));
            } catch (std::exception& error) {
                log_to_python(40, std::string("association callback failed: ") + error.what());
            }
        };
    }
    if (!on_request.is_none()) {
        auto handler = share(std::move(on_request));
        callbacks.on_request = [handler](const engine::DimseRequest& request)
            -> std::unique_ptr<engine::ResponseStream> {
            PythonCall call;
            try {
                py::dict fields;
                fields["command"] = request.command;
                fields["command_field"] = request.command_field;
                fields["message_id"] = request.message_id;
                fields["sop_class_uid"] = peer_text(request.sop_class_uid);
                fields["sop_instance_uid"] = peer_text(request.sop_instance_uid);
                fields["action_type_id"] = request.action_type_id;
                fields["attribute_list"] = request.attribute_list;
                fields["priority"] = request.priority;
                fields["association_id"] = request.association_id;
                fields["calling_ae"] = peer_text(request.calling_ae);
                fields["called_ae"] = peer_text(request.called_ae);
                fields["transfer_syntax_uid"] = peer_text(request.transfer_syntax_uid);
                if (request.command == "C-MOVE-RQ") {
                    fields["move_destination"] = peer_text(request.move_destination);
                }
                if (request.command == "N-EVENT-REPORT-RQ") {
                    fields["event_type_id"] = request.event_type_id;
                }
                py::object answers = handler->object(fields, py::bytes(request.data_set));
                return std::make_unique<PyResponseStream>(share(answers.attr("__iter__")()));
            } catch (std::exception& error) {
                log_to_python(40, std::string("request handler failed: ") + error.what());
                return nullptr;
            }
        };
    }
    if (!on_store.is_none()) {
        auto callable = share(std::move(on_store));
        callbacks.on_store = [callable](const engine::StoreRequest& request)
            -> engine::StoreAnswer {
            PythonCall call;
            try {
                py::tuple args = py::make_tuple(
                    peer_text(request.path), peer_text(request.calling_ae),
                    peer_text(request.called_ae), peer_text(request.sop_class_uid),
                    peer_text(request.sop_instance_uid), peer_text(request.transfer_syntax_uid));
                py::dict keywords;
                // content_hash=(size, sha256 hex) only when the engine hashed the file
                if (!request.sha256.empty()) {
                    keywords["content_hash"] = py::make_tuple(request.size, request.sha256);
                }
                if (request.checked) {  // the native check's verdict
                    keywords["check"] = engine::check_result(request.check);
                }
                py::object status = callable->object(*args, **keywords);
                engine::StoreAnswer answer;
                if (py::isinstance<py::tuple>(status)) {  // (status, error_comment)
                    auto pair = status.cast<py::tuple>();
                    if (pair.size() != 2) throw py::value_error("(status, error_comment)");
                    status = pair[0];
                    if (!pair[1].is_none()) {
                        answer.detail.error_comment = py::str(pair[1]).cast<std::string>();
                    }
                }
                const long value = status.cast<long>();
                if (value < 0 || value > 0xFFFF) throw py::value_error("status out of range");
                answer.status = static_cast<uint16_t>(value);
                return answer;
            } catch (py::error_already_set& error) {
                log_to_python(40, "store callback failed for " + request.sop_instance_uid +
                                      ": " + std::string(py::str(error.value())));
            } catch (std::exception& error) {
                log_to_python(40, "store callback gave no status for " +
                                      request.sop_instance_uid + ": " + error.what());
            }
            return engine::StoreAnswer{engine::kProcessingFailure, {}};
        };
    }
    return callbacks;
}

//! Owns the native engine; stops it without the GIL when Python drops it.
class PyEngine {
public:
    PyEngine(engine::EngineConfig config, py::object on_store, py::object on_request,
             py::object on_association, std::shared_ptr<engine::CheckRules> store_check)
        : engine_(std::make_unique<engine::Engine>(
              std::move(config),
              make_callbacks(std::move(on_store), std::move(on_request),
                             std::move(on_association), std::move(store_check)))) {}
    ~PyEngine() {
        py::gil_scoped_release release;
        engine_.reset();
    }
    void start() {
        py::gil_scoped_release release;
        engine_->start();
    }
    void stop(double grace) {
        py::gil_scoped_release release;
        engine_->stop(grace);
    }
    int port() const { return engine_->port(); }
    int tls_port() const { return engine_->tls_port(); }
    void set_tls(int port, std::string certificate, std::string private_key,
                 std::string ca_certificates, bool require_client_certificate) {
        py::gil_scoped_release release;
        engine_->set_tls(port, std::move(certificate), std::move(private_key),
                         std::move(ca_certificates), require_client_certificate);
    }
    void disable_tls() {
        py::gil_scoped_release release;
        engine_->disable_tls();
    }
    int active_associations() {
        py::gil_scoped_release release;
        return engine_->active_associations();
    }
    bool running() const { return engine_->running(); }
    void set_log_level(int level) { engine_->set_log_level(level); }
    void update_policy(engine::EngineConfig config) {
        py::gil_scoped_release release;
        engine_->update_policy(std::move(config));
    }
    bool send_event(uint64_t association_id, engine::EventReport event) {
        py::gil_scoped_release release;
        return engine_->send_event(association_id, std::move(event));
    }

private:
    std::unique_ptr<engine::Engine> engine_;
};

engine::EngineConfig make_config(
    const std::string& ae_title, const std::vector<std::string>& extra_called_aets,
    bool strict_called_aet, const std::vector<std::string>& allowed_calling_aets,
    const std::string& bind, int port, int max_associations, int artim_timeout,
    int max_pending, int max_pending_per_host, int acse_timeout, int dimse_timeout,
    int network_timeout, long max_pdu,
    const std::map<std::string, std::vector<std::string>>& contexts,
    const std::map<std::string, std::vector<std::string>>& retrieve_storage,
    const std::string& incoming_dir, bool hash_content) {
    engine::EngineConfig config;
    config.hash_content = hash_content;
    config.ae_title = ae_title;
    config.extra_called_aets = extra_called_aets;
    config.strict_called_aet = strict_called_aet;
    config.allowed_calling_aets = allowed_calling_aets;
    config.bind = bind;
    config.port = port;
    config.max_associations = max_associations;
    config.artim_timeout = artim_timeout;
    config.max_pending = max_pending;
    config.max_pending_per_host = max_pending_per_host;
    config.acse_timeout = acse_timeout;
    config.dimse_timeout = dimse_timeout;
    config.network_timeout = network_timeout;
    config.max_pdu = max_pdu;
    config.contexts = contexts;
    config.retrieve_storage = retrieve_storage;
    config.incoming_dir = incoming_dir;
    return config;
}

}  // namespace

PYBIND11_MODULE(_engine, module) {
    module.doc() = "Native DICOM SCP engine on DCMTK (see appliance/dicom/engine/README.md).";
    module.attr("IMPLEMENTATION_CLASS_UID") = engine::kImplementationClassUID;
    module.attr("IMPLEMENTATION_VERSION_NAME") = engine::kImplementationVersionName;

    module.def(
        "route_dcmtk_log",
        [](int level) { engine::route_dcmtk_log(log_to_python, level); }, py::arg("level"),
        "Send DCMTK's own log to the Python logger 'appliance.dicom.engine' from `level` up.");

    engine::bind_check(module);
    engine::bind_store_scu(module);

    py::class_<PyEngine>(module, "Engine")
        .def(py::init([](const std::string& ae_title, const std::vector<std::string>& extra,
                         bool strict_called_aet, const std::vector<std::string>& allowed,
                         const std::string& bind, int port, int max_associations,
                         int artim_timeout, int max_pending, int max_pending_per_host,
                         int acse_timeout,
                         int dimse_timeout, int network_timeout, long max_pdu,
                         const std::map<std::string, std::vector<std::string>>& contexts,
                         const std::map<std::string, std::vector<std::string>>& retrieve_storage,
                         const std::string& incoming_dir, py::object on_store,
                         py::object on_request, py::object on_association, bool hash_content,
                         std::shared_ptr<engine::CheckRules> store_check) {
                 return std::make_unique<PyEngine>(
                     make_config(ae_title, extra, strict_called_aet, allowed, bind, port,
                                 max_associations, artim_timeout, max_pending,
                                 max_pending_per_host, acse_timeout, dimse_timeout,
                                 network_timeout, max_pdu, contexts, retrieve_storage,
                                 incoming_dir, hash_content),
                     std::move(on_store), std::move(on_request),
                     std::move(on_association), std::move(store_check));
             }),
             py::kw_only(), py::arg("ae_title"), py::arg("extra_called_aets"),
             py::arg("strict_called_aet"), py::arg("allowed_calling_aets"), py::arg("bind"),
             py::arg("port"), py::arg("max_associations"), py::arg("artim_timeout"),
             py::arg("max_pending"), py::arg("max_pending_per_host"), py::arg("acse_timeout"),
             py::arg("dimse_timeout"), py::arg("network_timeout"), py::arg("max_pdu"),
             py::arg("contexts"), py::arg("retrieve_storage"), py::arg("incoming_dir"),
             py::arg("on_store"),
             py::arg("on_request") = py::none(), py::arg("on_association") = py::none(),
             py::arg("hash_content") = false, py::arg("store_check") = nullptr)
        .def("start", &PyEngine::start, "Bind, listen and serve on native threads.")
        .def("stop", &PyEngine::stop, py::arg("grace") = 10.0,
             "Stop accepting; open associations get `grace` seconds, then A-ABORT.")
        .def(
            "send_event",
            [](PyEngine& self, uint64_t association_id, const std::string& abstract_syntax,
               const std::string& sop_class_uid, const std::string& sop_instance_uid,
               uint16_t event_type_id, py::object data_set,
               const std::string& transfer_syntax_uid, uint64_t tag) {
                engine::EventReport event;
                event.abstract_syntax = abstract_syntax;
                event.sop_class_uid = sop_class_uid;
                event.sop_instance_uid = sop_instance_uid;
                event.event_type_id = event_type_id;
                event.has_data_set = !data_set.is_none();
                if (event.has_data_set) event.data_set = data_set.cast<std::string>();
                event.transfer_syntax_uid = transfer_syntax_uid;
                event.tag = tag;
                return self.send_event(association_id, std::move(event));
            },
            py::kw_only(), py::arg("association_id"), py::arg("abstract_syntax"),
            py::arg("sop_class_uid"), py::arg("sop_instance_uid"), py::arg("event_type_id"),
            py::arg("data_set"), py::arg("transfer_syntax_uid"), py::arg("tag") = 0,
            "Queue an N-EVENT-REPORT on an open association; False when it is gone. A "
            "non-zero `tag` gets an 'event_outcome' association event.")
        .def(
            "update_policy",
            [](PyEngine& self, const std::string& ae_title,
               const std::vector<std::string>& extra, bool strict_called_aet,
               const std::vector<std::string>& allowed, const std::string& bind, int port,
               int max_associations, int artim_timeout, int max_pending,
               int max_pending_per_host, int acse_timeout, int dimse_timeout,
               int network_timeout, long max_pdu,
               const std::map<std::string, std::vector<std::string>>& contexts,
               const std::map<std::string, std::vector<std::string>>& retrieve_storage,
               const std::string& incoming_dir, bool hash_content) {
                self.update_policy(make_config(
                    ae_title, extra, strict_called_aet, allowed, bind, port, max_associations,
                    artim_timeout, max_pending, max_pending_per_host, acse_timeout,
                    dimse_timeout, network_timeout, max_pdu, contexts, retrieve_storage,
                    incoming_dir, hash_content));
            },
            py::kw_only(), py::arg("ae_title"), py::arg("extra_called_aets"),
            py::arg("strict_called_aet"), py::arg("allowed_calling_aets"), py::arg("bind"),
            py::arg("port"), py::arg("max_associations"), py::arg("artim_timeout"),
            py::arg("max_pending"), py::arg("max_pending_per_host"), py::arg("acse_timeout"),
            py::arg("dimse_timeout"), py::arg("network_timeout"), py::arg("max_pdu"),
            py::arg("contexts"), py::arg("retrieve_storage"), py::arg("incoming_dir"),
            py::arg("hash_content") = false,
            "The policy for connections accepted from now on (ValueError when bind, port, "
            "contexts or incoming_dir differ).")
        .def("set_tls", &PyEngine::set_tls, py::kw_only(), py::arg("port"),
             py::arg("certificate"), py::arg("private_key"), py::arg("ca_certificates"),
             py::arg("require_client_certificate") = true,
             "DICOM over TLS on `port` as well (0: any free port): before start(), or while "
             "it runs (new handshakes get the new files; a new port gets a new listener; "
             "RuntimeError naming the file or port leaves everything as it was).")
        .def("disable_tls", &PyEngine::disable_tls,
             "No TLS listener from now on (open TLS associations run to their end).")
        .def_property_readonly("tls_port", &PyEngine::tls_port)
        .def("set_log_level", &PyEngine::set_log_level, py::arg("level"),
             "Lowest Python logging level the engine sends up.")
        .def_property_readonly("port", &PyEngine::port)
        .def_property_readonly("active_associations", &PyEngine::active_associations)
        .def_property_readonly("running", &PyEngine::running);
}
