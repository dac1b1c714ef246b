// A C-STORE SCU association on DCMTK, for the forwarder: one association to a peer with the
// presentation contexts asked for, C-STOREs of stored files (read as DCMTK does for its own
// senders: large values stay in the file until written) or of data sets as bytes, one at a
// time, then A-RELEASE or A-ABORT. Every method blocks; the bindings (store_scu_bindings.cpp)
// call them without the GIL. Not for use by two threads at once (a mutex guards that anyway).
// TCP_NODELAY: DCMTK sets it on the sockets it opens when the environment variable
// TCP_NODELAY is 1 (appliance/dicom/store_association.py sets it unless it is set).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "association.hpp"
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdatset.h"
#include "dcmtk/dcmnet/assoc.h"
#include "dcmtk/dcmnet/dcmlayer.h"

namespace engine {

//! Seconds the SCU waits: for the TCP connection, the association answer and each response.
struct ScuTimeouts {
    int connection = 30;
    int acse = 30;
    int dimse = 30;
};

//! Why no association was made: the A-ASSOCIATE-RJ's fields when the peer rejected it,
//! else `reason` says what happened (DCMTK's own words, e.g. the connect error).
struct ScuRefusal {
    bool rejected = false;
    int result = 0, source = 0, reason = 0;
    bool connected = false;  //!< the TCP connection was made (it failed later)
    std::string text;
};

//! What one C-STORE came to.
struct StoreOutcome {
    //! kStalled: the peer took no data for the DIMSE timeout (no answer either)
    enum Kind { kAnswered, kNoAnswer, kStalled, kMissing, kUnreadable, kNoContext } kind =
        kNoAnswer;
    unsigned status = 0;  //!< the C-STORE-RSP's status (kAnswered)
    std::string detail;   //!< why, for the other kinds
};

//! A requested association: dropped (its connection closed) and freed with its parameters.
struct ScuAssociationDeleter {
    void operator()(T_ASC_Association* association) const;
};
using ScuAssociationPtr = std::unique_ptr<T_ASC_Association, ScuAssociationDeleter>;

//! Makes the connections of one SCU's associations: plain TCP (DCMTK's own), each socket giving
//! up on a send after the association's DIMSE timeout. DCMTK gives every socket one send
//! timeout for the whole process (dcmSocketSendTimeout, 60 s), so a destination that stops
//! reading held a C-STORE that long whatever the destination's timeout said.
class SendLimitedLayer : public DcmTransportLayer {
public:
    explicit SendLimitedLayer(int seconds) : seconds_(seconds) {}
    DcmTransportConnection* createConnection(DcmNativeSocketType socket,
                                             OFBool secure) override;

private:
    int seconds_;
};

class StoreScu {
public:
    using Context = std::pair<std::string, std::string>;  //!< (SOP class, transfer syntax)

    //! Connects and negotiates; on failure `refusal` is filled and established() is false.
    StoreScu(const std::string& host, int port, const std::string& calling_aet,
             const std::string& called_aet, const std::vector<Context>& contexts,
             long max_receive_pdu, const ScuTimeouts& timeouts, ScuRefusal& refusal);
    ~StoreScu();
    StoreScu(const StoreScu&) = delete;
    StoreScu& operator=(const StoreScu&) = delete;

    //! Never waits (callers may hold the GIL while a store runs on another thread).
    bool established() const { return established_; }
    //! The contexts the peer accepted, each with its one transfer syntax.
    std::vector<Context> accepted() const { return accepted_; }
    //! The stored file `path` (with its File Meta) in its transfer syntax `syntax`.
    StoreOutcome store_file(const std::string& path, const std::string& sop_class,
                            const std::string& sop_instance, const std::string& syntax);
    //! A data set encoded in `syntax` (no File Meta).
    StoreOutcome store_data_set(const std::string& bytes, const std::string& sop_class,
                                const std::string& sop_instance, const std::string& syntax);
    //! A-RELEASE (A-ABORT when the peer does not answer it); nothing once ended.
    void release();
    //! A-ABORT; nothing once ended.
    void abort();

private:
    StoreOutcome send(DcmDataset& data, const std::string& sop_class,
                      const std::string& sop_instance, const std::string& syntax);
    std::mutex mutex_;  //!< held by every method that uses the association
    std::unique_ptr<SendLimitedLayer> layer_;  //!< declared before network_: outlives it
    NetworkPtr network_;
    ScuAssociationPtr association_;  //!< declared after network_: freed before it
    std::atomic<bool> established_{false};
    int dimse_timeout_ = 30;
    std::vector<Context> accepted_;
};

}  // namespace engine
