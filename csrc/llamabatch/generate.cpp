#include "llamabatch/generate.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "llamabatch/errors.h"

namespace llamabatch {

namespace {
using Clock = std::chrono::steady_clock;
constexpr int32_t kDefaultSequenceContext = 2048;
// A prefix held by another slot is copied when it is at least this many tokens
// longer than the one the new prompt's own slot holds: copying a slot's memory
// moves its whole buffer (n_ctx cells of every layer), which costs about what
// decoding a few tokens does.
constexpr size_t kMinCopiedPrefix = 16;
}  // namespace

size_t complete_utf8_prefix(std::string_view s) {
    // Walk back over continuation bytes to the last lead byte and check that
    // its character is complete.
    size_t i = s.size();
    size_t back = 0;
    while (i > 0 && back < 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) {
        --i;
        ++back;
    }
    if (i == 0) return back == 0 ? 0 : s.size();
    const auto lead = static_cast<unsigned char>(s[i - 1]);
    size_t need = 0;
    if (lead < 0x80) need = 0;
    else if ((lead & 0xE0) == 0xC0) need = 1;
    else if ((lead & 0xF0) == 0xE0) need = 2;
    else if ((lead & 0xF8) == 0xF0) need = 3;
    else return s.size();  // not a lead byte: leave invalid text as it is
    return back >= need ? s.size() : i - 1;
}

ContextSettings derive_generation_settings(const Model& model, const GenerationOptions& o) {
    if (!model.causal()) {
        throw InvalidArgument("'" + model.path() + "' is a non-causal (embedding) model and cannot generate "
                              "text: use Embedder for it");
    }
    if (model.has_encoder()) {
        throw InvalidArgument("encoder-decoder models are not supported by Generator");
    }
    const auto max_parallel = static_cast<int32_t>(llama_max_parallel_sequences());
    if (o.n_parallel < 1 || o.n_parallel > max_parallel) {
        throw InvalidArgument("n_parallel " + str(o.n_parallel) + " must be in 1.." + str(max_parallel));
    }
    if (o.n_ctx < 0 || o.n_batch < 0 || o.n_threads < 0) {
        throw InvalidArgument("n_ctx, n_batch and n_threads must be positive (or None to derive them)");
    }
    const int32_t n_ctx_train = std::max(model.n_ctx_train(), 1);
    if (o.n_ctx > n_ctx_train) {
        throw InvalidArgument("n_ctx " + str(o.n_ctx) + " is above the " + str(n_ctx_train) +
                              " tokens this model was trained on; use n_ctx <= " + str(n_ctx_train));
    }
    for (llama_token t : o.end_tokens) {
        if (t < 0 || t >= model.n_vocab()) {
            throw InvalidArgument("end token " + str(t) + " is outside the vocabulary 0.." + str(model.n_vocab() - 1));
        }
    }
    ContextSettings s;
    s.n_ctx = o.n_ctx > 0 ? o.n_ctx : std::min(n_ctx_train, kDefaultSequenceContext);
    s.n_batch = o.n_batch > 0 ? o.n_batch : std::max(512, o.n_parallel);
    if (s.n_batch < o.n_parallel) {
        throw InvalidArgument("n_batch " + str(s.n_batch) + " is below n_parallel " + str(o.n_parallel) +
                              ": every running sequence needs a place in each batch");
    }
    s.n_ubatch = std::min(s.n_batch, 512);
    s.n_seq_max = o.n_parallel;
    s.n_threads = o.n_threads > 0 ? o.n_threads
                                  : std::max(1, static_cast<int32_t>(std::thread::hardware_concurrency()));
    s.embeddings = false;
    s.pooling = LLAMA_POOLING_TYPE_NONE;
    s.flash_attn = o.flash_attn;
    s.batch_invariant = o.batch_invariant;
    // Each sequence owns n_ctx cells, so no running sequence can crowd out another.
    s.n_cells = s.n_ctx * o.n_parallel;
    // A unified cache was tried and was no faster once batches are in slot order
    // (benchmarks/README.md, "What was tried on the ragged workload").
    s.kv_unified = false;
    return s;
}

struct Generator::Slot {
    RequestId id = 0;  // the request it serves; 0 when free
    GenerationRequest request;
    llama_seq_id seq_id = 0;
    int32_t n_past = 0;        // tokens of this sequence in memory
    int32_t n_prompt_fed = 0;  // prompt tokens already in a batch
    int32_t i_batch = -1;      // batch index whose logits give the next token
    llama_token next = LLAMA_TOKEN_NULL;
    SamplerPtr sampler;
    GenerationResult result;
    // The tokens of this slot's sequence in memory, in position order
    // (cached.size() == n_past while busy); kept after release for reuse.
    std::vector<llama_token> cached;
    size_t stop_scan_from = 0;  // stop strings are searched from here on
    size_t longest_stop = 0;
    size_t emitted = 0;  // bytes of result.text already handed out in events

    bool busy() const { return id != 0; }
    bool prefilling() const { return n_prompt_fed < static_cast<int32_t>(request.prompt.size()); }
};

Generator::Generator(Model& model, const GenerationOptions& options)
    : model_(model),
      context_(std::make_unique<Context>(model, derive_generation_settings(model, options))),
      batch_(context_->settings().n_batch, context_->settings().n_seq_max),
      slots_(static_cast<size_t>(context_->settings().n_seq_max)) {
    for (size_t i = 0; i < slots_.size(); ++i) slots_[i].seq_id = static_cast<llama_seq_id>(i);
    end_tokens_ = options.end_tokens.empty() ? model_.declared_end_tokens() : options.end_tokens;
    shown_as_text_ = model_.text_tokens_made_control();
    prefix_cache_ = options.prefix_cache;
    // Copying between slots' memories is a plain buffer copy for an attention
    // cache; a recurrent state, a hybrid one or a sliding window is left alone.
    const llama_model* m = model_.get();
    copy_prefixes_ = prefix_cache_ && !llama_model_is_recurrent(m) && !llama_model_is_hybrid(m) &&
                     llama_model_n_swa(m) == 0;
}

Generator::~Generator() = default;

size_t Generator::n_running() const {
    return static_cast<size_t>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.busy(); }));
}

void Generator::check(const GenerationRequest& r, size_t i) const {
    const int32_t n_ctx = settings().n_ctx;
    const auto n = static_cast<int64_t>(r.prompt.size());
    const std::string name = "prompt " + str(static_cast<long long>(i));
    if (n == 0) throw InputError(i, name + " is empty: give it some text");
    if (n > n_ctx) {
        throw InputError(i, name + " has " + str(n) + " tokens, above the limit of " + str(n_ctx) +
                                " tokens per sequence (shorten it, or raise n_ctx)");
    }
    if (r.max_new_tokens < 1) {
        throw InvalidArgument("max_new_tokens " + str(r.max_new_tokens) + " must be at least 1");
    }
    validate(r.sampling);
    for (llama_token t : r.prompt) {
        if (t < 0 || t >= model_.n_vocab()) {
            throw InputError(i, name + " has token id " + str(t) + ", outside the vocabulary 0.." +
                                    str(model_.n_vocab() - 1));
        }
    }
}

RequestId Generator::submit(GenerationRequest request) {
    check(request);
    return enqueue(std::move(request));
}

RequestId Generator::enqueue(GenerationRequest request) {
    const RequestId id = next_id_++;
    queue_.push_back({id, std::move(request)});
    return id;
}

bool Generator::cancel(RequestId id) {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (it->id == id) {
            queue_.erase(it);
            return true;
        }
    }
    for (auto& slot : slots_) {
        if (slot.id == id) {
            release(slot, FinishReason::Cancelled);
            return true;
        }
    }
    return false;
}

namespace {
size_t common_prefix(const std::vector<llama_token>& a, const std::vector<llama_token>& b) {
    const size_t n = std::min(a.size(), b.size());
    size_t i = 0;
    while (i < n && a[i] == b[i]) ++i;
    return i;
}
}  // namespace

Generator::Slot* Generator::free_slot_for(const std::vector<llama_token>& prompt) {
    // The free slot whose memory shares the longest prefix with the prompt;
    // among equals the lowest, so that without reuse slots fill in order.
    Slot* best = nullptr;
    size_t best_shared = 0;
    for (auto& slot : slots_) {
        if (slot.busy()) continue;
        const size_t shared = prefix_cache_ ? common_prefix(slot.cached, prompt) : 0;
        if (best == nullptr || shared > best_shared) {
            best = &slot;
            best_shared = shared;
        }
    }
    return best;
}

int32_t Generator::reuse_prefix(Slot& slot) {
    // Keeps the part of the slot's memory that the new prompt starts with and
    // drops the rest. At least the prompt's last token is decoded again: its
    // logits give the first new token.
    const auto& prompt = slot.request.prompt;
    size_t keep = std::min(common_prefix(slot.cached, prompt), prompt.size() - 1);
    llama_memory_t mem = llama_get_memory(context_->get());
    if (mem == nullptr) {
        slot.cached.clear();
        return 0;
    }
    // Another slot, running or not, may hold a longer prefix of this prompt
    // (the first requests of a burst all share one system prompt): take a copy
    // of its memory, so that a prefix is decoded once in all, not once per slot.
    if (copy_prefixes_) {
        const Slot* donor = nullptr;
        size_t donor_keep = 0;
        for (const auto& other : slots_) {
            if (&other == &slot) continue;
            const size_t shared = std::min(common_prefix(other.cached, prompt), prompt.size() - 1);
            if (shared >= keep + kMinCopiedPrefix && shared > donor_keep) {
                donor = &other;
                donor_keep = shared;
            }
        }
        if (donor != nullptr) {
            // llama.cpp copies the buffer at the next decode, before that decode
            // writes anything; copies queued in one step run in the order made.
            llama_memory_seq_cp(mem, donor->seq_id, slot.seq_id, -1, -1);
            slot.cached.assign(donor->cached.begin(), donor->cached.begin() + static_cast<std::ptrdiff_t>(donor_keep));
            llama_memory_seq_rm(mem, slot.seq_id, static_cast<llama_pos>(donor_keep), -1);
            ++stats_.prefix_copies;
            return static_cast<int32_t>(donor_keep);
        }
    }
    // A recurrent state cannot be cut back (seq_rm says so), and a sliding-window
    // cache may no longer hold the early positions: then decode it all.
    if (keep > 0 && (!llama_memory_seq_rm(mem, slot.seq_id, static_cast<llama_pos>(keep), -1) ||
                     llama_memory_seq_pos_min(mem, slot.seq_id) > 0)) {
        keep = 0;
    }
    if (keep == 0) llama_memory_seq_rm(mem, slot.seq_id, -1, -1);
    slot.cached.resize(keep);
    return static_cast<int32_t>(keep);
}

void Generator::forget(Slot& slot) {
    if (llama_memory_t mem = llama_get_memory(context_->get())) {
        llama_memory_seq_rm(mem, slot.seq_id, -1, -1);
    }
    slot.cached.clear();
}

void Generator::forget_all() {
    context_->clear_memory();
    for (auto& slot : slots_) slot.cached.clear();
}

void Generator::admit() {
    // Free slots take the next requests at once, in submission order; each
    // takes the free slot with the longest shared prefix.
    while (!queue_.empty()) {
        Slot* free = free_slot_for(queue_.front().request.prompt);
        if (free == nullptr) break;
        Slot& slot = *free;
        Queued q = std::move(queue_.front());
        queue_.pop_front();
        slot.id = q.id;
        slot.request = std::move(q.request);
        const int32_t reused = reuse_prefix(slot);
        slot.n_past = reused;
        slot.n_prompt_fed = reused;
        slot.i_batch = -1;
        slot.stop_scan_from = 0;
        slot.emitted = 0;
        slot.longest_stop = 0;
        for (const auto& stop : slot.request.stop) slot.longest_stop = std::max(slot.longest_stop, stop.size());
        slot.sampler = make_sampler(slot.request.sampling, end_tokens_, model_.n_vocab());
        slot.result = GenerationResult{};
        slot.result.prompt_tokens = static_cast<int32_t>(slot.request.prompt.size());
        slot.result.cached_tokens = reused;
        stats_.prompt_tokens += static_cast<int64_t>(slot.request.prompt.size());
        stats_.cached_tokens += reused;
    }
}

bool Generator::accept_token(Slot& slot, llama_token token) {
    const llama_vocab* vocab = model_.vocab();
    if (std::find(end_tokens_.begin(), end_tokens_.end(), token) != end_tokens_.end()) {
        slot.result.finish = FinishReason::Stop;
        return false;
    }
    slot.result.tokens.push_back(token);
    ++stats_.generated_tokens;

    char piece[256];
    const bool special = std::binary_search(shown_as_text_.begin(), shown_as_text_.end(), token);
    const int32_t n = llama_token_to_piece(vocab, token, piece, sizeof(piece), 0, special);
    if (n > 0) slot.result.text.append(piece, static_cast<size_t>(n));

    std::string& text = slot.result.text;
    for (const auto& stop : slot.request.stop) {
        const size_t at = text.find(stop, slot.stop_scan_from);
        if (!stop.empty() && at != std::string::npos) {
            text.resize(at);
            slot.result.finish = FinishReason::Stop;
            return false;
        }
    }
    const size_t longest = slot.longest_stop;
    if (longest > 0) slot.stop_scan_from = text.size() >= longest ? text.size() - longest + 1 : 0;

    if (static_cast<int32_t>(slot.result.tokens.size()) >= slot.request.max_new_tokens ||
        slot.n_past >= settings().n_ctx) {  // no room to feed this token back
        slot.result.finish = FinishReason::Length;
        return false;
    }
    slot.next = token;
    return true;
}

std::string Generator::take_final_text(Slot& slot, bool finished) {
    const std::string& text = slot.result.text;
    size_t end = text.size();
    if (!finished) {
        // The last longest_stop - 1 bytes may be the start of a stop string.
        const size_t held = slot.longest_stop > 0 ? slot.longest_stop - 1 : 0;
        end = end > held ? end - held : 0;
        end = complete_utf8_prefix(std::string_view(text).substr(0, end));
    }
    if (end <= slot.emitted) return {};
    std::string out = text.substr(slot.emitted, end - slot.emitted);
    slot.emitted = end;
    return out;
}

GenerationResult Generator::release(Slot& slot, FinishReason reason) {
    slot.result.finish = reason;
    slot.result.text.resize(complete_utf8_prefix(slot.result.text));
    GenerationResult result = std::move(slot.result);
    // Its memory stays for the next prompt that shares a prefix with it.
    if (!prefix_cache_) forget(slot);
    slot.id = 0;
    slot.request = GenerationRequest{};
    slot.result = GenerationResult{};
    slot.sampler.reset();
    ++stats_.sequences;
    return result;
}

std::vector<GenerationEvent> Generator::step() {
    std::vector<GenerationEvent> events;
    admit();
    if (n_running() == 0) return events;
    const auto t0 = Clock::now();
    struct CountTime {  // on every way out, including a failed decode
        double& total;
        Clock::time_point t0;
        ~CountTime() { total += std::chrono::duration<double>(Clock::now() - t0).count(); }
    } count_time{stats_.total_seconds, t0};

    // One batch, in slot (= sequence id) order: the next token of every
    // running sequence, and prompt chunks in the room those leave. The order
    // matters with per-sequence memory (kv_unified off): llama.cpp then cuts a
    // batch into micro-batches of consecutive sequence ids with equal token
    // counts, so tokens out of id order cost extra decode passes.
    const int32_t capacity = batch_.capacity();
    int32_t room = capacity;  // for prompt chunks, once every running sequence has its place
    for (const auto& slot : slots_) {
        if (slot.busy() && !slot.prefilling()) --room;
    }
    batch_.clear();
    for (auto& slot : slots_) {
        if (!slot.busy()) continue;
        if (!slot.prefilling()) {
            slot.i_batch = batch_.n_tokens();
            batch_.add(slot.next, slot.n_past++, &slot.seq_id, 1, true);
            slot.cached.push_back(slot.next);
            continue;
        }
        if (room <= 0) continue;  // no room left in this batch
        const auto& prompt = slot.request.prompt;
        const int32_t remaining = static_cast<int32_t>(prompt.size()) - slot.n_prompt_fed;
        const int32_t chunk = std::min(remaining, room);
        const bool completes = chunk == remaining;
        batch_.add_sequence(prompt.data() + slot.n_prompt_fed, chunk, slot.seq_id, slot.n_past,
                            completes ? Output::Last : Output::None);
        slot.cached.insert(slot.cached.end(), prompt.begin() + slot.n_prompt_fed,
                           prompt.begin() + slot.n_prompt_fed + chunk);
        slot.n_prompt_fed += chunk;
        slot.n_past += chunk;
        room -= chunk;
        slot.i_batch = completes ? batch_.n_tokens() - 1 : -1;
    }

    const auto td = Clock::now();
    try {
        context_->decode(batch_);
    } catch (const std::exception& e) {
        // The batch is lost, and with it every running sequence's state; what
        // the memory holds is no longer known, so no slot's prefix is reused.
        forget_all();
        for (auto& slot : slots_) {
            if (!slot.busy()) continue;
            GenerationEvent ev;
            ev.id = slot.id;
            ev.finished = true;
            ev.error = e.what();
            ev.result = release(slot, FinishReason::Error);
            events.push_back(std::move(ev));
        }
        return events;
    }
    stats_.decode_seconds += std::chrono::duration<double>(Clock::now() - td).count();
    ++stats_.decodes;
    stats_.batch_tokens += batch_.n_tokens();

    for (auto& slot : slots_) {
        if (!slot.busy() || slot.i_batch < 0) continue;
        const llama_token token = llama_sampler_sample(slot.sampler.get(), context_->get(), slot.i_batch);
        slot.i_batch = -1;
        GenerationEvent ev;
        ev.id = slot.id;
        const size_t before = slot.result.tokens.size();
        const bool goes_on = accept_token(slot, token);
        ev.new_tokens = static_cast<int32_t>(slot.result.tokens.size() - before);
        if (goes_on) {
            ev.text = take_final_text(slot, false);
            if (ev.text.empty() && ev.new_tokens == 0) continue;
        } else {
            slot.result.text.resize(complete_utf8_prefix(slot.result.text));
            ev.text = take_final_text(slot, true);
            ev.finished = true;
            ev.result = release(slot, slot.result.finish);
        }
        events.push_back(std::move(ev));
    }
    return events;
}

std::vector<GenerationResult> Generator::run(const std::vector<GenerationRequest>& requests,
                                             const ProgressFn& on_progress) {
    if (!idle()) {
        throw InvalidArgument("run() needs an idle Generator: " + str(static_cast<long long>(n_running() + n_queued())) +
                              " submitted requests are still in flight (step() them to the end, or cancel them)");
    }
    for (size_t i = 0; i < requests.size(); ++i) check(requests[i], i);

    if (!prefix_cache_) forget_all();
    std::vector<RequestId> ids;
    ids.reserve(requests.size());
    for (const auto& r : requests) ids.push_back(enqueue(r));  // checked above, naming each by its index
    const RequestId first = ids.empty() ? 0 : ids.front();  // ids are consecutive
    std::vector<GenerationResult> results(requests.size());
    size_t n_finished = 0;
    const auto stop_all = [&] {
        for (RequestId id : ids) cancel(id);
    };

    while (!idle()) {
        for (auto& ev : step()) {
            if (!ev.finished) continue;
            if (ev.result.finish == FinishReason::Error) {
                stop_all();
                throw RuntimeFailure(ev.error);
            }
            results[static_cast<size_t>(ev.id - first)] = std::move(ev.result);
            ++n_finished;
        }
        // Called after every decode, not only when a prompt finishes, so that a
        // caller can stop a run (Ctrl-C) within one decode.
        if (on_progress && !on_progress(n_finished)) {
            stop_all();
            throw Cancelled();
        }
    }
    return results;
}

}  // namespace llamabatch
