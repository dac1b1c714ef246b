// Python bindings of the C-STORE SCU (store_scu.hpp): `StoreScu.request(...)` and the
// association's methods, each run without the GIL.
#pragma once

#include <pybind11/pybind11.h>

namespace engine {

//! Adds StoreScu to the module.
void bind_store_scu(pybind11::module_& module);

}  // namespace engine
