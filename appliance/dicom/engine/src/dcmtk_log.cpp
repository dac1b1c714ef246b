// See dcmtk_log.hpp. log4cplus levels are Python's times 1,000 (TRACE 0 ... FATAL 50,000).
#include "dcmtk_log.hpp"

#include <utility>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/oflog/appender.h"
#include "dcmtk/oflog/logger.h"
#include "dcmtk/oflog/oflog.h"
#include "dcmtk/oflog/spi/logevent.h"

namespace engine {

namespace {

namespace log4cplus = dcmtk::log4cplus;

class SinkAppender : public log4cplus::Appender {
public:
    explicit SinkAppender(std::function<void(int, const std::string&)> sink)
        : sink_(std::move(sink)) {}
    ~SinkAppender() override { destructorImpl(); }
    void close() override {}

protected:
    void append(const log4cplus::spi::InternalLoggingEvent& event) override {
        const int level = static_cast<int>(event.getLogLevel()) / 1000;
        sink_(level < 10 ? 10 : level,
              std::string(event.getLoggerName().c_str()) + ": " + event.getMessage().c_str());
    }

private:
    std::function<void(int, const std::string&)> sink_;
};

}  // namespace

void route_dcmtk_log(std::function<void(int, const std::string&)> sink, int python_level) {
    OFLog::getLogger("dcmtk.dcmnet");  // makes oflog set itself up before we replace its output
    log4cplus::Logger root = log4cplus::Logger::getRoot();
    root.removeAllAppenders();
    // log4cplus owns appenders through its intrusive pointer, which takes a fresh object.
    root.addAppender(log4cplus::SharedAppenderPtr(new SinkAppender(std::move(sink))));
    root.setLogLevel(static_cast<log4cplus::LogLevel>(python_level * 1000));
}

}  // namespace engine
