// Python bindings of the native structural check (dataset_check.hpp): `CheckRules` (its
// tables, built by appliance/dicom/native_check.py), `check_file(path, rules)` (GIL released
// while it runs) and the verdict as the store callback gets it.
#pragma once

#include <pybind11/pybind11.h>

#include "dataset_check.hpp"

namespace engine {

//! A verdict for Python (GIL held): ("parsed", transfer syntax, {tag: raw bytes}),
//! ("malformed", reason) or ("deferred", why).
pybind11::tuple check_result(const CheckResult& result);

//! Adds CheckRules and check_file to the module.
void bind_check(pybind11::module_& module);

}  // namespace engine
