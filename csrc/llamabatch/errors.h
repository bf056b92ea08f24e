// The exceptions the core throws. Every message names the offending value, the
// limit it broke and what to change; the Python bindings map each type to the
// matching built-in exception.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace llamabatch {

// A number in an error message.
inline std::string str(long long v) { return std::to_string(v); }

// A caller passed a value outside what the API accepts (-> ValueError).
struct InvalidArgument : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// One input of a call's many (a text, a prompt) is bad (-> llamabatch.InputError,
// a ValueError whose .index is this index): callers find the input by the
// index, never by parsing the message.
struct InputError : InvalidArgument {
    InputError(size_t index, const std::string& message) : InvalidArgument(message), index(index) {}
    size_t index;
};

// A caller passed a value of the wrong kind (-> TypeError).
struct WrongType : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// A file that should exist does not (-> FileNotFoundError).
struct NotFound : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A file exists but is not a model llama.cpp can load (-> ValueError).
struct ModelError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// llama.cpp reported a failure at run time (-> RuntimeError).
struct RuntimeFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace llamabatch
