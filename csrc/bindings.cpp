// All nanobind glue for llamabatch._core: argument checks that need Python
// types, GIL release, exception mapping, and numpy views/ownership. The logic
// lives in csrc/llamabatch/ where C++ users get it too.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llamabatch/batch.h"
#include "llamabatch/chat.h"
#include "llamabatch/context.h"
#include "llamabatch/devices.h"
#include "llamabatch/embed.h"
#include "llamabatch/engine.h"
#include "llamabatch/errors.h"
#include "llamabatch/generate.h"
#include "llamabatch/model.h"
#include "llamabatch/tokenizer.h"
#include "llamabatch/weights.h"

namespace nb = nanobind;
using namespace nb::literals;
using namespace llamabatch;

namespace {

// A 1-D view into memory owned by `owner`; numpy keeps the owner alive.
template <typename T>
nb::object view_1d(T* data, size_t n, nb::handle owner) {
    size_t shape[1] = {n};
    return nb::cast(nb::ndarray<nb::numpy, T, nb::ndim<1>>(data, 1, shape, owner));
}

// Hands a heap buffer to numpy without a copy; the capsule frees it.
template <typename T>
nb::object owned_array(std::unique_ptr<T[]> data, std::initializer_list<size_t> shape_list) {
    std::vector<size_t> shape(shape_list);
    T* raw = data.release();
    nb::capsule owner(raw, [](void* p) noexcept { delete[] static_cast<T*>(p); });
    return nb::cast(nb::ndarray<nb::numpy, T>(raw, shape.size(), shape.data(), owner));
}

// A numpy array that owns a copy of n values.
template <typename T>
nb::object owned_copy(const T* data, size_t n) {
    std::unique_ptr<T[]> buf(new T[std::max<size_t>(n, 1)]);
    if (n > 0) std::memcpy(buf.get(), data, n * sizeof(T));
    return owned_array(std::move(buf), {n});
}

// The rows as a numpy matrix that takes over their buffer (no copy).
nb::object rows_matrix(EmbeddingRows& rows) {
    return owned_array(std::move(rows.data), {rows.rows, rows.width});
}

// Each text's first row for per-token rows (int64, n + 1), or None for pooled rows.
nb::object rows_offsets(const EmbeddingRows& rows) {
    if (rows.offsets.empty()) return nb::none();
    return owned_copy(rows.offsets.data(), rows.offsets.size());
}

const char* pooling_name(PoolingType p) {
    switch (p) {
        case LLAMA_POOLING_TYPE_NONE: return "none";
        case LLAMA_POOLING_TYPE_MEAN: return "mean";
        case LLAMA_POOLING_TYPE_CLS: return "cls";
        case LLAMA_POOLING_TYPE_LAST: return "last";
        case LLAMA_POOLING_TYPE_RANK: return "rank";
        default: return "unspecified";
    }
}

PoolingType pooling_from_name(const nb::object& name) {
    if (name.is_none()) return LLAMA_POOLING_TYPE_UNSPECIFIED;
    if (!nb::isinstance<nb::str>(name)) throw WrongType("pooling must be a str or None");
    const std::string s = nb::cast<std::string>(name);
    if (s == "none") return LLAMA_POOLING_TYPE_NONE;
    if (s == "mean") return LLAMA_POOLING_TYPE_MEAN;
    if (s == "cls") return LLAMA_POOLING_TYPE_CLS;
    if (s == "last") return LLAMA_POOLING_TYPE_LAST;
    if (s == "rank") return LLAMA_POOLING_TYPE_RANK;
    throw InvalidArgument("pooling '" + s + "' is not one of None, 'none', 'mean', 'cls', 'last', 'rank'");
}

Output output_from_name(const std::string& s) {
    if (s == "all") return Output::All;
    if (s == "last") return Output::Last;
    if (s == "none") return Output::None;
    throw InvalidArgument("output '" + s + "' is not one of 'all', 'last', 'none'");
}

// Any 1-D integer array-like as int32 tokens: converted once, range-checked.
using TokenArray = nb::ndarray<const int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

std::vector<llama_token> to_tokens(nb::handle obj, const char* what) {
    TokenArray direct;
    if (nb::try_cast(nb::borrow(obj), direct, false)) {  // int32 and contiguous: one memcpy
        return std::vector<llama_token>(direct.data(), direct.data() + direct.shape(0));
    }
    nb::object arr = nb::borrow(obj);
    if (!nb::ndarray_check(obj)) {
        if (nb::isinstance<nb::str>(obj) || nb::isinstance<nb::bytes>(obj)) {
            throw WrongType(std::string(what) + " must be a 1-D integer array of token ids, not text: tokenize it first");
        }
        arr = nb::module_::import_("numpy").attr("asarray")(obj);
    }
    const std::string kind = nb::cast<std::string>(arr.attr("dtype").attr("kind"));
    const auto ndim = nb::cast<size_t>(arr.attr("ndim"));
    if (ndim != 1) {
        throw InvalidArgument(std::string(what) + " must be 1-D, got an array with " + std::to_string(ndim) + " dimensions");
    }
    const auto n = nb::cast<size_t>(arr.attr("size"));
    if (n > 0 && kind != "i" && kind != "u") {
        throw WrongType(std::string(what) + " must hold integers, got dtype " +
                        nb::cast<std::string>(arr.attr("dtype").attr("name")) + " (use np.asarray(x, dtype=np.int32))");
    }
    auto as64 = nb::module_::import_("numpy").attr("ascontiguousarray")(arr, "dtype"_a = "int64");
    auto view = nb::cast<nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>>(as64);
    std::vector<llama_token> out(n);
    for (size_t i = 0; i < n; ++i) {
        const int64_t v = view(i);
        if (v < INT32_MIN || v > INT32_MAX) {
            throw InvalidArgument(std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                                  " does not fit a 32-bit token id");
        }
        out[i] = static_cast<llama_token>(v);
    }
    return out;
}

// UTF-8 views of a sequence of str. The str objects are kept referenced, so
// the views stay valid while the GIL is released, whatever happens to the list.
struct Utf8Texts {
    std::vector<nb::object> keep;
    std::vector<std::string_view> views;
};

Utf8Texts utf8_views(const nb::sequence& texts) {
    Utf8Texts out;
    auto& views = out.views;
    const size_t n = nb::len(texts);
    views.reserve(n);
    out.keep.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        nb::object item = texts[i];
        if (!PyUnicode_Check(item.ptr())) {
            throw WrongType("texts[" + std::to_string(i) + "] is " + std::string(Py_TYPE(item.ptr())->tp_name) +
                            ", not str: pass a list of str");
        }
        Py_ssize_t size = 0;
        const char* data = PyUnicode_AsUTF8AndSize(item.ptr(), &size);
        if (!data) throw nb::python_error();
        views.emplace_back(data, static_cast<size_t>(size));
        out.keep.push_back(std::move(item));
    }
    return out;
}

nb::list token_lists(const TokenizedTexts& t) {
    nb::list out;
    for (size_t i = 0; i < t.size(); ++i) {
        out.append(owned_copy(t.data(i), static_cast<size_t>(t.length(i))));
    }
    return out;
}

nb::dict stats_dict(const EngineStats& s) {
    nb::dict d;
    d["decodes"] = s.decodes;
    d["tokens"] = s.tokens;
    d["sequences"] = s.sequences;
    d["decode_seconds"] = s.decode_seconds;
    d["total_seconds"] = s.total_seconds;
    return d;
}

nb::dict stats_dict(const GenerationStats& s) {
    nb::dict d;
    d["decodes"] = s.decodes;
    d["batch_tokens"] = s.batch_tokens;
    d["prompt_tokens"] = s.prompt_tokens;
    d["cached_tokens"] = s.cached_tokens;
    d["prefix_copies"] = s.prefix_copies;
    d["generated_tokens"] = s.generated_tokens;
    d["sequences"] = s.sequences;
    d["decode_seconds"] = s.decode_seconds;
    d["total_seconds"] = s.total_seconds;
    return d;
}

// Progress and Ctrl-C between decodes: takes the GIL briefly, calls the Python
// callback, and stops the run if it raised or a signal is pending. The Python
// error stays set and is raised once the run has unwound.
ProgressFn python_progress(nb::object callback) {
    return [callback = std::move(callback)](size_t n_done) -> bool {
        nb::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) return false;
        if (!callback.is_none()) {
            try {
                callback(n_done);
            } catch (nb::python_error& e) {
                e.restore();
                return false;
            }
        }
        return true;
    };
}

// Runs f with the GIL released; a Cancelled run re-raises the pending Python error.
template <typename F>
void run_released(F&& f) {
    try {
        nb::gil_scoped_release release;
        f();
    } catch (const Cancelled&) {
        if (PyErr_Occurred()) throw nb::python_error();
        throw RuntimeFailure("the run was cancelled");
    }
}

// Python threads may share one object, but a llama.cpp context and our batches
// are not thread-safe: a call on a busy object waits for the one before it.
// Take these only with the GIL released (a run holding one takes the GIL for
// its progress callback), and an engine's lock before its context's.
class Exclusive {
public:
    explicit Exclusive(Context& c) : context_(c.in_use()) {}
    explicit Exclusive(Engine& e) : engine_(e.in_use()) {
        if (e.context()) context_ = std::unique_lock<std::mutex>(e.context()->in_use());
    }

private:
    std::unique_lock<std::mutex> engine_;
    std::unique_lock<std::mutex> context_;
};

// Records where each input went: (decode number, seq id, first token index).
class PackingRecorder final : public Sink {
public:
    explicit PackingRecorder(int64_t* out, ProgressFn progress) : out_(out), progress_(std::move(progress)) {}
    void on_sequence(Context*, size_t input_index, llama_seq_id seq_id, int32_t first, int32_t) override {
        int64_t* row = out_ + 3 * input_index;
        row[0] = decode_;
        row[1] = seq_id;
        row[2] = first;
    }
    bool on_flush(size_t n_done) override {
        ++decode_;
        return progress_ ? progress_(n_done) : true;
    }

private:
    int64_t* out_;
    ProgressFn progress_;
    int64_t decode_ = 0;
};

// Streams spans through the engine and returns where each went, as an (n, 3) int64 array.
nb::object run_and_record(Engine& e, const std::vector<TokenSpan>& spans, nb::object progress) {
    std::unique_ptr<int64_t[]> placement(new int64_t[3 * std::max<size_t>(spans.size(), 1)]);
    PackingRecorder sink(placement.get(), python_progress(std::move(progress)));
    run_released([&] {
        Exclusive busy(e);
        e.run(spans, sink);
    });
    return owned_array(std::move(placement), {spans.size(), 3});
}

std::vector<std::vector<llama_token>> token_sequences(const nb::sequence& seqs) {
    std::vector<std::vector<llama_token>> out;
    const size_t n = nb::len(seqs);
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        const std::string what = "sequences[" + std::to_string(i) + "]";
        out.push_back(to_tokens(seqs[i], what.c_str()));
    }
    return out;
}



// Prompts as Python gives them: a str (a plain prompt: BOS and the text, special-token text kept as
// text) or an array of token ids (a chat prompt that llamabatch.chat_template rendered and tokenized).
std::vector<Prompt> prompt_inputs(const nb::sequence& prompts) {
    std::vector<Prompt> out;
    const size_t n = nb::len(prompts);
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        nb::object p = prompts[i];
        Prompt in;
        if (nb::isinstance<nb::str>(p)) {
            in.text = nb::cast<std::string>(p);
        } else if (nb::ndarray_check(p)) {
            const std::string what = "prompts[" + std::to_string(i) + "]";
            in.is_tokens = true;
            in.tokens = to_tokens(p, what.c_str());
        } else {
            throw WrongType("prompts[" + std::to_string(i) + "] is " + std::string(Py_TYPE(p.ptr())->tp_name) +
                            ": a prompt is a str or an array of token ids (llamabatch.Generator renders "
                            "messages with the model's chat template)");
        }
        out.push_back(std::move(in));
    }
    return out;
}

const char* finish_name(FinishReason r) {
    switch (r) {
        case FinishReason::Stop: return "stop";
        case FinishReason::Length: return "length";
        case FinishReason::Cancelled: return "cancelled";
        case FinishReason::Error: return "error";
    }
    return "error";
}

SamplingParams sampling_params(float temperature, int32_t top_k, float top_p, float min_p, int64_t seed,
                               bool ignore_eos) {
    SamplingParams sp;
    sp.temperature = temperature;
    sp.top_k = top_k;
    sp.top_p = top_p;
    sp.min_p = min_p;
    sp.ignore_eos = ignore_eos;
    if (seed < -1 || seed > static_cast<int64_t>(UINT32_MAX) - 1) {
        throw InvalidArgument("seed " + std::to_string(seed) + " must be in 0..4294967294 (or None)");
    }
    sp.seed = seed < 0 ? LLAMA_DEFAULT_SEED : static_cast<uint32_t>(seed);
    return sp;
}

}  // namespace

NB_MODULE(_core, m) {
    m.doc() = "llamabatch's C++ core: Batch, Model, Context, Engine and Embedder over llama.cpp";

    // An abort inside ggml would otherwise start gdb to print a backtrace, which
    // hangs a worker process for seconds or forever. Every abort path we know of
    // is checked before the call, so this only matters for the ones we do not.
    // setenv(..., 0) keeps a user's own setting.
    setenv("GGML_NO_BACKTRACE", "1", 0);

    nb::register_exception_translator([](const std::exception_ptr& p, void*) {
        try {
            std::rethrow_exception(p);
        } catch (const NotFound& e) {
            PyErr_SetString(PyExc_FileNotFoundError, e.what());
        } catch (const WrongType& e) {
            PyErr_SetString(PyExc_TypeError, e.what());
        } catch (const ModelError& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        }
    });

    // InputError -> llamabatch.InputError(ValueError) carrying the input's index.
    nb::exception<InputError> input_error(m, "InputError", PyExc_ValueError);
    nb::register_exception_translator(
        [](const std::exception_ptr& p, void* type) {
            try {
                std::rethrow_exception(p);
            } catch (const InputError& e) {
                nb::handle cls(static_cast<PyObject*>(type));
                nb::object err = cls(e.what());
                err.attr("index") = e.index;
                PyErr_SetObject(cls.ptr(), err.ptr());
            }
        },
        input_error.ptr());

    m.def("set_verbose", &set_verbose, "verbose"_a,
          "Show llama.cpp's log on stderr (True) or keep it silent (False, the default).");
    m.def("max_parallel_sequences", [] { return llama_max_parallel_sequences(); },
          "The most sequences llama.cpp decodes in one batch.");
    m.def("weight_format_of_file", &weight_format_of_file, "path"_a,
          "The weight format a GGUF file declares ('f32', 'f16', 'bf16', 'q4_1', ..., 'unknown'), from its header.\n"
          "FileNotFoundError if it is missing, ValueError if it is not a GGUF.");
    m.def("convert_weights",
          [](const std::string& src, const std::string& dst, const std::string& format, int n_threads) {
              nb::gil_scoped_release release;
              convert_weights(src, dst, format, n_threads);
          },
          "src"_a, "dst"_a, "format"_a, "n_threads"_a = 0,
          "Write dst, a copy of the float GGUF src with its 2-D weights in format ('f32', 'f16' or 'bf16').\n"
          "ValueError for another format or a quantized src; RuntimeError if dst cannot be written.");
    m.def("build_info", [] {
              const BuildInfo b = build_info();
              nb::dict d;
              d["llama_cpp"] = b.llama_cpp;
              d["cuda"] = b.cuda;
              d["cuda_version"] = b.cuda ? nb::cast(b.cuda_version) : nb::none();
              d["cuda_architectures"] = b.cuda ? nb::cast(b.cuda_architectures) : nb::none();
              return d;
          },
          nb::sig("def build_info() -> dict[str, object]"),
          "What was compiled in: llama.cpp's system info line, and the CUDA toolkit and architectures.");
    m.def("devices", [] {
              std::vector<Device> found;
              {
                  nb::gil_scoped_release release;  // the first call initializes the CUDA runtime
                  found = devices();
              }
              nb::list out;
              for (const Device& dev : found) {
                  nb::dict d;
                  d["name"] = dev.name;
                  d["backend"] = dev.backend;
                  d["description"] = dev.description;
                  d["kind"] = dev.kind;
                  d["memory_free"] = dev.memory_free;
                  d["memory_total"] = dev.memory_total;
                  out.append(d);
              }
              return out;
          },
          nb::sig("def devices() -> list[dict[str, object]]"),
          "The devices llama.cpp can run on here (the CPU, and GPUs where a driver and a device are found).");

    // ---------------------------------------------------------------- Batch
    nb::class_<Batch>(m, "Batch",
        "The buffers of one llama_batch, owned in C++.\n\n"
        "The arrays (token, pos, n_seq_id, seq_id, logits) are numpy views of that memory,\n"
        "never copies, and span the whole capacity; the first n_tokens entries are live.\n"
        "A view keeps the Batch alive, and a write through it is what llama_decode sees.")
        .def(nb::init<int32_t, int32_t, int32_t>(), "capacity"_a, "n_seq_max"_a = 1, "embd"_a = 0,
             "capacity: tokens it holds; n_seq_max: sequences it holds (seq ids 0..n_seq_max-1), also the\n"
             "most seq ids one token may carry; embd: width of input embeddings (0: token ids).")
        .def("add",
             [](Batch& b, llama_token token, llama_pos pos, nb::object seq_ids, bool output) {
                 std::vector<llama_seq_id> ids;
                 if (nb::isinstance<nb::int_>(seq_ids)) {
                     ids.push_back(nb::cast<llama_seq_id>(seq_ids));
                 } else {
                     ids = to_tokens(seq_ids, "seq_ids");
                 }
                 b.add(token, pos, ids.data(), static_cast<int32_t>(ids.size()), output);
             },
             "token"_a, "pos"_a, "seq_ids"_a, "output"_a = false,
             nb::sig("def add(self, token: int, pos: int, seq_ids: int | collections.abc.Sequence[int], "
                     "output: bool = False) -> None"),
             "Append one token at position pos, belonging to seq_ids (an int or a list of ints).")
        .def("add_sequence",
             [](Batch& b, nb::handle tokens, llama_seq_id seq_id, llama_pos pos0, const std::string& output) {
                 const Output out = output_from_name(output);
                 const std::vector<llama_token> t = to_tokens(tokens, "tokens");
                 b.add_sequence(t.data(), static_cast<int32_t>(t.size()), seq_id, pos0, out);
             },
             "tokens"_a, "seq_id"_a, "pos0"_a = 0, "output"_a = "all",
             nb::sig("def add_sequence(self, tokens: numpy.typing.ArrayLike, seq_id: int, pos0: int = 0, "
                     "output: str = 'all') -> None"),
             "Append a whole sequence (a 1-D integer array) to seq_id at positions pos0, pos0+1, ...;\n"
             "output: 'all', 'last' or 'none' of its tokens ask for an output.")
        .def("clear", &Batch::clear, "Forget all tokens (storage is kept).")
        .def("fits", &Batch::fits, "n_tokens"_a, "n_seqs"_a = 1,
             "Whether n_tokens more tokens in n_seqs new sequences still fit, by tokens and by sequence count.")
        .def("__len__", &Batch::n_tokens)
        .def_prop_rw("n_tokens", &Batch::n_tokens, &Batch::set_n_tokens,
                     "Live tokens. Settable after filling the arrays directly; checked before decoding.")
        .def_prop_ro("capacity", &Batch::capacity)
        .def_prop_ro("n_seq_max", &Batch::n_seq_max)
        .def_prop_ro("n_seqs", &Batch::n_seqs, "Distinct sequences among the live tokens.")
        .def_prop_ro("embd", &Batch::embd)
        .def_prop_ro("token",
            [](nb::handle_t<Batch> self) {
                Batch& b = nb::cast<Batch&>(self);
                if (b.embd() != 0) throw InvalidArgument("this batch carries embeddings: use .embeddings");
                return view_1d(b.tokens(), static_cast<size_t>(b.capacity()), self);
            }, "int32 view, shape (capacity,)",
            nb::for_getter(nb::sig("def token(self, /) -> numpy.typing.NDArray[numpy.int32]")))
        .def_prop_ro("pos",
            [](nb::handle_t<Batch> self) {
                Batch& b = nb::cast<Batch&>(self);
                return view_1d(b.positions(), static_cast<size_t>(b.capacity()), self);
            }, "int32 view, shape (capacity,)",
            nb::for_getter(nb::sig("def pos(self, /) -> numpy.typing.NDArray[numpy.int32]")))
        .def_prop_ro("n_seq_id",
            [](nb::handle_t<Batch> self) {
                Batch& b = nb::cast<Batch&>(self);
                return view_1d(b.n_seq_ids(), static_cast<size_t>(b.capacity()), self);
            }, "int32 view, shape (capacity,)",
            nb::for_getter(nb::sig("def n_seq_id(self, /) -> numpy.typing.NDArray[numpy.int32]")))
        .def_prop_ro("seq_id",
            [](nb::handle_t<Batch> self) {
                Batch& b = nb::cast<Batch&>(self);
                size_t shape[2] = {static_cast<size_t>(b.capacity()), static_cast<size_t>(b.n_seq_max())};
                return nb::cast(nb::ndarray<nb::numpy, int32_t, nb::ndim<2>>(b.seq_ids(), 2, shape, self));
            }, "int32 view, shape (capacity, n_seq_max): row i holds token i's seq ids",
            nb::for_getter(nb::sig("def seq_id(self, /) -> numpy.typing.NDArray[numpy.int32]")))
        .def_prop_ro("logits",
            [](nb::handle_t<Batch> self) {
                Batch& b = nb::cast<Batch&>(self);
                return view_1d(b.outputs(), static_cast<size_t>(b.capacity()), self);
            }, "int8 view, shape (capacity,): output flags (1: this token gives logits/embeddings)",
            nb::for_getter(nb::sig("def logits(self, /) -> numpy.typing.NDArray[numpy.int8]")))
        .def_prop_ro("embeddings",
            [](nb::handle_t<Batch> self) {
                Batch& b = nb::cast<Batch&>(self);
                if (b.embd() == 0) throw InvalidArgument("this batch carries token ids: use .token");
                size_t shape[2] = {static_cast<size_t>(b.capacity()), static_cast<size_t>(b.embd())};
                return nb::cast(nb::ndarray<nb::numpy, float, nb::ndim<2>>(b.embeddings(), 2, shape, self));
            }, "float32 view, shape (capacity, embd), for batches made with embd > 0",
            nb::for_getter(nb::sig("def embeddings(self, /) -> numpy.typing.NDArray[numpy.float32]")))
        .def("__repr__", [](const Batch& b) {
            return "Batch(n_tokens=" + std::to_string(b.n_tokens()) + ", capacity=" + std::to_string(b.capacity()) +
                   ", n_seq_max=" + std::to_string(b.n_seq_max()) + ")";
        });

    // ---------------------------------------------------------------- Model
    nb::class_<Model>(m, "Model", "A GGUF model loaded by llama.cpp.")
        .def("__init__",
             [](Model* self, const std::string& path, std::optional<int32_t> n_gpu_layers, bool vocab_only,
                bool repack) {
                 ModelOptions o;
                 o.n_gpu_layers = n_gpu_layers;
                 o.vocab_only = vocab_only;
                 o.repack = repack;
                 nb::gil_scoped_release release;
                 new (self) Model(path, o);
             },
             "path"_a, "n_gpu_layers"_a = nb::none(), "vocab_only"_a = false, "repack"_a = true,
             "Load a GGUF file. FileNotFoundError if it is missing, ValueError if it is not a loadable model.\n"
             "n_gpu_layers: layers on the GPU (-1 all, 0 none; None: all when a GPU is present).\n"
             "repack: let the CPU backend repack quantized weights for its SIMD kernels (False for batch invariance).")
        .def_prop_ro("repack", &Model::repack, "Whether the CPU backend may repack quantized weights.")
        .def_prop_ro("device", &Model::device,
                     "Where the weights are: 'cpu', 'cuda:0', or 'cuda:0+cpu' when only some layers are offloaded.")
        .def_prop_ro("n_gpu_layers", &Model::n_gpu_layers, "The n_gpu_layers llama.cpp was given (-1: all).")
        .def_prop_ro("n_layer", &Model::n_layer)
        .def_prop_ro("path", &Model::path)
        .def_prop_ro("n_embd", &Model::n_embd)
        .def_prop_ro("n_embd_out", &Model::n_embd_out)
        .def_prop_ro("n_vocab", &Model::n_vocab)
        .def_prop_ro("n_ctx_train", &Model::n_ctx_train)
        .def_prop_ro("n_params", &Model::n_params)
        .def_prop_ro("architecture", &Model::architecture)
        .def_prop_ro("description", &Model::description)
        .def_prop_ro("causal", &Model::causal, "False for BERT-like models that attend over the whole sequence.")
        .def_prop_ro("pooling", [](const Model& mo) { return pooling_name(mo.pooling()); },
                     "The pooling the GGUF asks for ('unspecified' when none).")
        .def_prop_ro("chat_template", [](const Model& mo) { return mo.chat_template(); },
                     "The GGUF's default chat template (tokenizer.chat_template), '' when it has none.")
        .def("meta", &Model::meta, "key"_a, "A metadata value as str ('' when absent).")
        .def("tokenize",
             [](const Model& mo, const std::string& text, bool add_special, bool parse_special) {
                 std::vector<llama_token> t;
                 {
                     nb::gil_scoped_release release;
                     t = tokenize_text(mo, text, add_special, parse_special);
                 }
                 return owned_copy(t.data(), t.size());
             },
             "text"_a, "add_special"_a = true, "parse_special"_a = false,
             nb::sig("def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> "
                     "numpy.typing.NDArray[numpy.int32]"),
             "Token ids of one text (int32 array).")
        .def("tokenize_texts",
             [](const Model& mo, nb::sequence texts, bool add_special, bool parse_special, int n_threads,
                bool llama_cpp) {
                 const Utf8Texts utf8 = utf8_views(texts);
                 TokenizedTexts t;
                 {
                     nb::gil_scoped_release release;
                     t = tokenize_texts(mo, utf8.views, add_special, parse_special, n_threads, llama_cpp);
                 }
                 return token_lists(t);
             },
             "texts"_a, "add_special"_a = true, "parse_special"_a = false, "n_threads"_a = 0, "llama_cpp"_a = false,
             nb::sig("def tokenize_texts(self, texts: collections.abc.Sequence[str], add_special: bool = True, "
                     "parse_special: bool = False, n_threads: int = 0, llama_cpp: bool = False) -> "
                     "list[numpy.typing.NDArray[numpy.int32]]"),
             "Token ids of many texts (a list of int32 arrays), on n_threads (0: picked from the work).\n"
             "llama_cpp=True: llama.cpp's own tokenizer even for a BERT vocabulary, whose ids then differ\n"
             "from the reference's (for comparisons).")
        .def("prompt_tokens",
             [](const Model& mo, nb::handle prompt) {
                 const std::vector<Prompt> inputs = prompt_inputs(nb::cast<nb::sequence>(nb::make_tuple(prompt)));
                 std::vector<llama_token> t;
                 {
                     nb::gil_scoped_release release;
                     t = prompt_tokens(mo, inputs[0], false, std::nullopt);
                 }
                 return owned_copy(t.data(), t.size());
             },
             "prompt"_a,
             nb::sig("def prompt_tokens(self, prompt: str | numpy.typing.NDArray[numpy.int32]) -> "
                     "numpy.typing.NDArray[numpy.int32]"),
             "Token ids of one prompt as Generator's generate() builds them: a str as a plain prompt (the\n"
             "model's BOS if it wants one, special-token text kept as text), token ids as they are.")
        .def("named_chat_template",
             [](const Model& mo, const std::string& name) { return mo.chat_template(name); }, "name"_a,
             "The GGUF's chat template called name (tokenizer.chat_template.<name>), '' when absent.")
        .def("token_text",
             [](const Model& mo, llama_token token) {
                 if (token < 0 || token >= mo.n_vocab()) {
                     throw InvalidArgument("token " + std::to_string(token) + " is not in the vocabulary (0.." +
                                           std::to_string(mo.n_vocab() - 1) + ")");
                 }
                 const char* text = llama_vocab_get_text(mo.vocab(), token);
                 return nb::bytes(text, std::strlen(text));
             },
             "token"_a,
             "A token's text as the vocabulary stores it (UTF-8 bytes): for a special token, the text that\n"
             "tokenizing with parse_special reads as it, such as b'<|im_start|>'.")
        .def_prop_ro("control_tokens",
                     [](const Model& mo) {
                         std::vector<llama_token> t;
                         for (llama_token i = 0; i < mo.n_vocab(); ++i) {
                             // The tokens tokenize() reads only with parse_special (llama-vocab.cpp's rule).
                             if (llama_vocab_get_attr(mo.vocab(), i) &
                                 (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_UNKNOWN)) {
                                 t.push_back(i);
                             }
                         }
                         return owned_copy(t.data(), t.size());
                     },
                     nb::for_getter(nb::sig("def control_tokens(self, /) -> numpy.typing.NDArray[numpy.int32]")),
                     "Ids of the control and unknown tokens (int32 array): those that tokenize() reads from\n"
                     "their text only with parse_special=True.")
        .def_prop_ro("declared_end_tokens",
                     [](const Model& mo) {
                         const std::vector<llama_token> t = mo.declared_end_tokens();
                         return owned_copy(t.data(), t.size());
                     },
                     nb::for_getter(nb::sig("def declared_end_tokens(self, /) -> numpy.typing.NDArray[numpy.int32]")),
                     "The end-of-generation token ids the GGUF declares (int32 array): its eos, and its eot and\n"
                     "eom when it names them; not tokens llama.cpp takes as ends by their text.")
        .def("__repr__", [](const Model& mo) {
            return "Model('" + mo.path() + "', architecture='" + mo.architecture() + "')";
        });

    // ---------------------------------------------------------------- Context
    nb::class_<Context>(m, "Context",
        "A llama.cpp context over a Model, with settings derived so that no input reaches an assert.")
        .def("__init__",
             [](Context* self, Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_ubatch, int32_t n_seq_max,
                int32_t n_threads, bool embeddings, nb::object pooling, bool flash_attn) {
                 ContextOptions o;
                 o.n_ctx = n_ctx;
                 o.n_batch = n_batch;
                 o.n_ubatch = n_ubatch;
                 o.n_seq_max = n_seq_max;
                 o.n_threads = n_threads;
                 o.embeddings = embeddings;
                 o.pooling = pooling_from_name(pooling);
                 o.flash_attn = flash_attn;
                 nb::gil_scoped_release release;
                 new (self) Context(model, o);
             },
             "model"_a, "n_ctx"_a = 0, "n_batch"_a = 0, "n_ubatch"_a = 0, "n_seq_max"_a = 0, "n_threads"_a = 0,
             "embeddings"_a = false, "pooling"_a = nb::none(), "flash_attn"_a = true, nb::keep_alive<1, 2>(),
             nb::sig("def __init__(self, model: Model, n_ctx: int = 0, n_batch: int = 0, n_ubatch: int = 0, "
                     "n_seq_max: int = 0, n_threads: int = 0, embeddings: bool = False, pooling: str | None = None, "
                     "flash_attn: bool = True) -> None"))
        .def("decode",
             [](Context& c, const Batch& b) {
                 nb::gil_scoped_release release;
                 Exclusive busy(c);
                 c.decode(b);
             },
             "batch"_a, "Decode the batch's live tokens; ValueError for anything llama.cpp would abort on.")
        .def("clear_memory",
             [](Context& c) {
                 nb::gil_scoped_release release;
                 Exclusive busy(c);
                 c.clear_memory();
             },
             "Forget every sequence in the context's memory.")
        .def("logits",
             [](Context& c, int32_t i) {
                 std::vector<float> row;
                 {
                     nb::gil_scoped_release release;
                     Exclusive busy(c);
                     const float* v = llama_get_logits_ith(c.get(), i);
                     if (!v) throw InvalidArgument("token " + std::to_string(i) + " asked for no output in the last decode");
                     row.assign(v, v + c.model().n_vocab());
                 }
                 return owned_copy(row.data(), row.size());
             },
             "i"_a, nb::sig("def logits(self, i: int) -> numpy.typing.NDArray[numpy.float32]"),
             "The logits of batch token i from the last decode (a float32 copy).")
        .def_prop_ro("n_ctx", [](const Context& c) { return c.settings().n_ctx; })
        .def_prop_ro("n_batch", [](const Context& c) { return c.settings().n_batch; })
        .def_prop_ro("n_ubatch", [](const Context& c) { return c.settings().n_ubatch; })
        .def_prop_ro("n_seq_max", [](const Context& c) { return c.settings().n_seq_max; })
        .def_prop_ro("n_threads", [](const Context& c) { return c.settings().n_threads; })
        .def_prop_ro("pooling", [](const Context& c) { return pooling_name(c.settings().pooling); });

    // ---------------------------------------------------------------- Engine
    nb::class_<Engine>(m, "Engine",
        "The streaming decode loop: packs sequences into a fixed batch in input order and decodes\n"
        "when the next one does not fit by tokens or by sequence count.")
        .def(nb::init<Context&>(), "context"_a, nb::keep_alive<1, 2>())
        .def(nb::init<int32_t, int32_t>(), "n_batch"_a, "n_seq_max"_a,
             "A dry run: packs and flushes exactly as a real run, without decoding.")
        .def("run",
             [](Engine& e, nb::sequence sequences, nb::object progress) {
                 const auto seqs = token_sequences(sequences);
                 std::vector<TokenSpan> spans(seqs.size());
                 for (size_t i = 0; i < seqs.size(); ++i) {
                     spans[i] = {seqs[i].data(), static_cast<int32_t>(seqs[i].size())};
                 }
                 return run_and_record(e, spans, std::move(progress));
             },
             "sequences"_a, "progress"_a = nb::none(),
             nb::sig("def run(self, sequences: collections.abc.Sequence[numpy.typing.ArrayLike], "
                     "progress: collections.abc.Callable[[int], object] | None = None) -> numpy.typing.NDArray[numpy.int64]"),
             "Stream token sequences through the batch. Returns an int64 array (n, 3): for each input,\n"
             "the decode it went into, its seq id there and the batch index of its first token.")
        .def("run_packed",
             [](Engine& e, nb::handle tokens, nb::handle offsets, nb::object progress) {
                 TokenArray flat;
                 if (!nb::try_cast(nb::borrow(tokens), flat, false)) {
                     throw WrongType("tokens must be a contiguous 1-D int32 array (np.ascontiguousarray(x, dtype=np.int32))");
                 }
                 nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> offs;
                 if (!nb::try_cast(nb::borrow(offsets), offs, false)) {
                     throw WrongType("offsets must be a contiguous 1-D int64 array");
                 }
                 const size_t n = offs.shape(0) == 0 ? 0 : offs.shape(0) - 1;
                 const auto total = static_cast<int64_t>(flat.shape(0));
                 std::vector<TokenSpan> spans(n);
                 for (size_t i = 0; i < n; ++i) {
                     const int64_t a = offs(i), b = offs(i + 1);
                     if (a < 0 || b < a || b > total || b - a > INT32_MAX) {
                         throw InvalidArgument("offsets[" + std::to_string(i) + ":" + std::to_string(i + 2) + "] = (" +
                                               std::to_string(a) + ", " + std::to_string(b) +
                                               ") must be non-decreasing and within the " + std::to_string(total) +
                                               " tokens");
                     }
                     spans[i] = {flat.data() + a, static_cast<int32_t>(b - a)};
                 }
                 return run_and_record(e, spans, std::move(progress));
             },
             "tokens"_a, "offsets"_a, "progress"_a = nb::none(),
             nb::sig("def run_packed(self, tokens: numpy.typing.NDArray[numpy.int32], offsets: numpy.typing.NDArray[numpy.int64], "
                     "progress: collections.abc.Callable[[int], object] | None = None) -> numpy.typing.NDArray[numpy.int64]"),
             "Like run(), for sequences stored back to back: sequence i is tokens[offsets[i]:offsets[i+1]]\n"
             "(int32 tokens, int64 offsets of length n+1). Nothing is copied.")
        .def("set_max_sequences",
             [](Engine& e, int32_t n_seqs) {
                 nb::gil_scoped_release release;
                 Exclusive busy(e);
                 e.set_max_sequences(n_seqs);
             },
             "n_seqs"_a,
             "Cap the sequences per decode (0: the batch's n_seq_max).")
        .def_prop_ro("stats", [](const Engine& e) { return stats_dict(e.stats()); },
                     nb::for_getter(nb::sig("def stats(self, /) -> dict[str, float]")))
        .def("reset_stats", &Engine::reset_stats)
        .def_prop_ro("n_batch", [](const Engine& e) { return e.batch().capacity(); })
        .def_prop_ro("n_seq_max", [](const Engine& e) { return e.batch().n_seq_max(); });

    // ---------------------------------------------------------------- Embedder
    nb::class_<Embedder>(m, "Embedder", "Embeds many texts through the streaming engine (see llamabatch.Embedder).")
        .def("__init__",
             [](Embedder* self, Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_seq_max, int32_t n_threads,
                nb::object pooling, bool flash_attn, bool parse_special, bool batch_invariant) {
                 ContextOptions o;
                 o.n_ctx = n_ctx;
                 o.n_batch = n_batch;
                 o.n_seq_max = n_seq_max;
                 o.n_threads = n_threads;
                 o.pooling = pooling_from_name(pooling);
                 o.flash_attn = flash_attn;
                 o.batch_invariant = batch_invariant;
                 nb::gil_scoped_release release;
                 new (self) Embedder(model, o, parse_special);
             },
             "model"_a, "n_ctx"_a = 0, "n_batch"_a = 0, "n_seq_max"_a = 0, "n_threads"_a = 0,
             "pooling"_a = nb::none(), "flash_attn"_a = true, "parse_special"_a = true, "batch_invariant"_a = false,
             nb::keep_alive<1, 2>(),
             nb::sig("def __init__(self, model: Model, n_ctx: int = 0, n_batch: int = 0, n_seq_max: int = 0, "
                     "n_threads: int = 0, pooling: str | None = None, flash_attn: bool = True, "
                     "parse_special: bool = True, batch_invariant: bool = False) -> None"))
        .def_prop_ro("batch_invariant", [](const Embedder& e) { return e.settings().batch_invariant; })
        .def_prop_ro("parse_special", &Embedder::parse_special)
        .def_prop_ro("n_embd", &Embedder::n_embd)
        .def_prop_ro("pooling", [](const Embedder& e) { return pooling_name(e.pooling()); })
        .def_prop_ro("max_tokens", &Embedder::max_tokens)
        .def_prop_ro("n_batch", [](const Embedder& e) { return e.settings().n_batch; })
        .def_prop_ro("n_ubatch", [](const Embedder& e) { return e.settings().n_ubatch; })
        .def_prop_ro("n_seq_max", [](const Embedder& e) { return e.settings().n_seq_max; })
        .def_prop_ro("n_threads", [](const Embedder& e) { return e.settings().n_threads; })
        .def_prop_ro("stats", [](Embedder& e) { return stats_dict(e.engine().stats()); },
                     nb::for_getter(nb::sig("def stats(self, /) -> dict[str, float]")))
        .def("reset_stats", [](Embedder& e) { e.engine().reset_stats(); })
        .def("tokenize",
             [](const Embedder& e, nb::sequence texts) {
                 const Utf8Texts utf8 = utf8_views(texts);
                 TokenizedTexts t;
                 {
                     nb::gil_scoped_release release;
                     t = e.tokenize(utf8.views);
                 }
                 return token_lists(t);
             },
             "texts"_a,
             nb::sig("def tokenize(self, texts: collections.abc.Sequence[str]) -> list[numpy.typing.NDArray[numpy.int32]]"),
             "Token ids of each text, as a list of int32 arrays.")
        .def("embed_tokens",
             [](Embedder& e, nb::sequence sequences, int32_t truncate, int norm, int32_t batch_size,
                nb::object progress) {
                 TokenizedTexts t;
                 for (const auto& seq : token_sequences(sequences)) {
                     t.tokens.insert(t.tokens.end(), seq.begin(), seq.end());
                     t.offsets.push_back(static_cast<int64_t>(t.tokens.size()));
                 }
                 EmbeddingRows rows;
                 ProgressFn on_progress = python_progress(std::move(progress));
                 run_released([&] {
                     Exclusive busy(e.context());
                     e.engine().set_max_sequences(batch_size);
                     rows = e.embed_sequences(std::move(t), truncate, norm, on_progress);
                 });
                 nb::object lengths = owned_copy(rows.lengths.data(), rows.lengths.size());
                 return nb::make_tuple(rows_matrix(rows), rows_offsets(rows), lengths);
             },
             "sequences"_a, "truncate"_a = 0, "norm"_a = kNormL2, "batch_size"_a = 0, "progress"_a = nb::none(),
             nb::sig("def embed_tokens(self, sequences: collections.abc.Sequence[numpy.typing.ArrayLike], "
                     "truncate: int = 0, norm: int = 2, batch_size: int = 0, progress: collections.abc.Callable[[int], object] | None = None) -> "
                     "tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.int64] | None, numpy.typing.NDArray[numpy.int32]]"),
             "Embeds token id sequences. Returns (matrix, offsets, lengths): rows as encode() gives them,\n"
             "and the token count of each sequence after truncation (int32).")
        .def("encode",
             [](Embedder& e, nb::sequence texts, int32_t truncate, int norm, int32_t batch_size, nb::object progress) {
                 const Utf8Texts utf8 = utf8_views(texts);
                 EmbeddingRows rows;
                 ProgressFn on_progress = python_progress(std::move(progress));
                 run_released([&] {
                     Exclusive busy(e.context());
                     e.engine().set_max_sequences(batch_size);
                     rows = e.embed_texts(utf8.views, truncate, norm, on_progress);
                 });
                 return nb::make_tuple(rows_matrix(rows), rows_offsets(rows));
             },
             "texts"_a, "truncate"_a = 0, "norm"_a = kNormL2, "batch_size"_a = 0, "progress"_a = nb::none(),
             nb::sig("def encode(self, texts: collections.abc.Sequence[str], truncate: int = 0, norm: int = 2, "
                     "batch_size: int = 0, progress: collections.abc.Callable[[int], object] | None = None) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.int64] | None]"),
             "Returns (matrix, offsets): pooled rows in input order and None, or for pooling 'none'\n"
             "one row per token and the int64 offsets of each text's rows.");

    // ---------------------------------------------------------------- Generator
    nb::class_<Generator>(m, "Generator", "Continuous-batching generation (see llamabatch.Generator).")
        .def("__init__",
             [](Generator* self, Model& model, int32_t n_parallel, int32_t n_ctx, int32_t n_batch, int32_t n_threads,
                bool flash_attn, std::vector<llama_token> end_tokens, bool batch_invariant, bool prefix_cache) {
                 GenerationOptions o;
                 o.n_parallel = n_parallel;
                 o.n_ctx = n_ctx;
                 o.n_batch = n_batch;
                 o.n_threads = n_threads;
                 o.flash_attn = flash_attn;
                 o.end_tokens = std::move(end_tokens);
                 o.batch_invariant = batch_invariant;
                 o.prefix_cache = prefix_cache;
                 nb::gil_scoped_release release;
                 new (self) Generator(model, o);
             },
             "model"_a, "n_parallel"_a = 16, "n_ctx"_a = 0, "n_batch"_a = 0, "n_threads"_a = 0, "flash_attn"_a = true,
             "end_tokens"_a = std::vector<llama_token>{}, "batch_invariant"_a = false, "prefix_cache"_a = true,
             nb::keep_alive<1, 2>())
        .def_prop_ro("batch_invariant", [](const Generator& g) { return g.settings().batch_invariant; })
        .def_prop_ro("prefix_cache", &Generator::prefix_cache)
        .def_prop_ro("end_tokens",
                     [](const Generator& g) { return owned_copy(g.end_tokens().data(), g.end_tokens().size()); },
                     nb::for_getter(nb::sig("def end_tokens(self, /) -> numpy.typing.NDArray[numpy.int32]")),
                     "The token ids that end a sequence (int32 array); ignore_eos bans them.")
        .def_prop_ro("n_parallel", [](const Generator& g) { return g.settings().n_seq_max; })
        .def_prop_ro("n_ctx", [](const Generator& g) { return g.settings().n_ctx; })
        .def_prop_ro("n_batch", [](const Generator& g) { return g.settings().n_batch; })
        .def_prop_ro("n_threads", [](const Generator& g) { return g.settings().n_threads; })
        .def_prop_ro("stats", [](const Generator& g) { return stats_dict(g.stats()); },
                     nb::for_getter(nb::sig("def stats(self, /) -> dict[str, float]")))
        .def("reset_stats", &Generator::reset_stats)
        .def("generate",
             [](Generator& g, nb::sequence prompts, int32_t max_new_tokens,
                float temperature, int32_t top_k, float top_p, float min_p, int64_t seed,
                std::vector<std::string> stop, bool ignore_eos, nb::object progress) {
                 const std::vector<Prompt> inputs = prompt_inputs(prompts);
                 const SamplingParams sp = sampling_params(temperature, top_k, top_p, min_p, seed, ignore_eos);
                 std::vector<GenerationResult> results;
                 ProgressFn on_progress = python_progress(std::move(progress));
                 run_released([&] {
                     Exclusive busy(g.context());
                     std::vector<GenerationRequest> requests(inputs.size());
                     for (size_t i = 0; i < inputs.size(); ++i) {
                         requests[i].prompt = prompt_tokens(g.model(), inputs[i], false, std::nullopt);
                         requests[i].max_new_tokens = max_new_tokens;
                         requests[i].sampling = sp;
                         requests[i].stop = stop;
                     }
                     results = g.run(requests, on_progress);
                 });
                 nb::list out;
                 for (auto& r : results) {
                     out.append(nb::make_tuple(owned_copy(r.tokens.data(), r.tokens.size()),
                                               nb::bytes(r.text.data(), r.text.size()), finish_name(r.finish),
                                               r.prompt_tokens, r.cached_tokens));
                 }
                 return out;
             },
             "prompts"_a, "max_new_tokens"_a = 256, "temperature"_a = 0.0f,
             "top_k"_a = 0, "top_p"_a = 1.0f, "min_p"_a = 0.0f, "seed"_a = -1,
             "stop"_a = std::vector<std::string>{}, "ignore_eos"_a = false, "progress"_a = nb::none(),
             nb::sig("def generate(self, prompts: collections.abc.Sequence[str | numpy.typing.NDArray[numpy.int32]], "
                     "max_new_tokens: int = 256, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, "
                     "min_p: float = 0.0, seed: int = -1, stop: collections.abc.Sequence[str] = [], "
                     "ignore_eos: bool = False, progress: collections.abc.Callable[[int], object] | None = None) -> "
                     "list[tuple[numpy.typing.NDArray[numpy.int32], bytes, str, int, int]]"),
             "Returns a list of (tokens int32 array, text bytes, finish reason, prompt token count, cached prompt\n"
             "token count) in prompt order.")
        .def_prop_ro("idle", &Generator::idle, "No submitted request is queued or running.")
        .def_prop_ro("n_queued", &Generator::n_queued)
        .def_prop_ro("n_running", &Generator::n_running)
        .def("submit",
             [](Generator& g, nb::handle prompt, int32_t max_new_tokens, float temperature, int32_t top_k, float top_p,
                float min_p, int64_t seed, std::vector<std::string> stop, bool ignore_eos) {
                 GenerationRequest r;
                 r.prompt = to_tokens(prompt, "prompt");
                 r.max_new_tokens = max_new_tokens;
                 r.sampling = sampling_params(temperature, top_k, top_p, min_p, seed, ignore_eos);
                 r.stop = std::move(stop);
                 nb::gil_scoped_release release;
                 Exclusive busy(g.context());
                 return g.submit(std::move(r));
             },
             "prompt"_a, "max_new_tokens"_a = 256, "temperature"_a = 0.0f, "top_k"_a = 0, "top_p"_a = 1.0f,
             "min_p"_a = 0.0f, "seed"_a = -1, "stop"_a = std::vector<std::string>{}, "ignore_eos"_a = false,
             nb::sig("def submit(self, prompt: numpy.typing.ArrayLike, max_new_tokens: int = 256, "
                     "temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, "
                     "seed: int = -1, stop: collections.abc.Sequence[str] = [], ignore_eos: bool = False) -> int"),
             "Queues a request (prompt token ids); returns its id. Raises ValueError for a bad request.")
        .def("step",
             [](Generator& g) {
                 std::vector<GenerationEvent> events;
                 {
                     nb::gil_scoped_release release;
                     Exclusive busy(g.context());
                     events = g.step();
                 }
                 nb::list out;
                 for (auto& ev : events) {
                     nb::object result = nb::none();
                     if (ev.finished) {
                         const GenerationResult& r = ev.result;
                         result = nb::make_tuple(owned_copy(r.tokens.data(), r.tokens.size()),
                                                 nb::bytes(r.text.data(), r.text.size()), finish_name(r.finish),
                                                 r.prompt_tokens, r.cached_tokens);
                     }
                     nb::object error = ev.error.empty() ? nb::none() : nb::object(nb::str(ev.error.c_str()));
                     out.append(nb::make_tuple(ev.id, nb::bytes(ev.text.data(), ev.text.size()), ev.new_tokens,
                                               result, error));
                 }
                 return out;
             },
             nb::sig("def step(self) -> list[tuple[int, bytes, int, tuple[numpy.typing.NDArray[numpy.int32], bytes, str, int, int] | None, "
                     "str | None]]"),
             "One decode. Returns (id, new text bytes, new token count, result, error) for each request that\n"
             "advanced; result is None, or (tokens, text, finish reason, prompt token count, cached prompt token\n"
             "count) once finished.")
        .def("cancel",
             [](Generator& g, RequestId id) {
                 nb::gil_scoped_release release;
                 Exclusive busy(g.context());
                 return g.cancel(id);
             },
             "id"_a, "Drops a queued request or ends a running one; False if unknown or done.");
}
