// DCMTK's own log (oflog) routed to one sink: its console appender removed, one appender that
// hands every event, at its level, to the engine's log callback (Python logging).
#pragma once

#include <functional>
#include <string>

namespace engine {

//! Route every oflog event to `sink(python_level, "logger: message")` from now on, and let
//! DCMTK produce only events at `python_level` or above (10 DEBUG ... 40 ERROR).
void route_dcmtk_log(std::function<void(int, const std::string&)> sink, int python_level);

}  // namespace engine
