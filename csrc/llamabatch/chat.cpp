#include "llamabatch/chat.h"

#include "llamabatch/errors.h"
#include "llamabatch/tokenizer.h"

namespace llamabatch {

std::string apply_chat_template(const Model& model, const std::vector<ChatMessage>& messages) {
    const std::string tmpl = model.chat_template();
    if (tmpl.empty()) {
        throw InvalidArgument("'" + model.path() + "' has no chat template (it is a base model): "
                              "pass chat=False and a plain prompt");
    }
    std::vector<llama_chat_message> chat;
    chat.reserve(messages.size());
    size_t total = 0;
    for (const auto& m : messages) {
        chat.push_back({m.role.c_str(), m.content.c_str()});
        total += m.role.size() + m.content.size();
    }
    std::string buf(total * 2 + 256, '\0');
    int32_t n = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), true, buf.data(),
                                          static_cast<int32_t>(buf.size()));
    if (n > static_cast<int32_t>(buf.size())) {
        buf.resize(static_cast<size_t>(n));
        n = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), true, buf.data(), n);
    }
    if (n < 0) {
        throw InvalidArgument("llama.cpp does not support the chat template of '" + model.path() +
                              "'; format the prompt yourself and pass chat=False");
    }
    buf.resize(static_cast<size_t>(n));
    return buf;
}

std::vector<llama_token> plain_prompt_tokens(const Model& model, const std::string& text) {
    return tokenize_text(model, text, true, false);
}

std::vector<llama_token> prompt_tokens(const Model& model, const Prompt& prompt, bool chat,
                                       const std::optional<std::string>& system) {
    if (prompt.is_tokens) return prompt.tokens;
    if (!prompt.is_messages && !chat) return plain_prompt_tokens(model, prompt.text);
    std::vector<ChatMessage> messages;
    if (system) messages.push_back({"system", *system});
    if (prompt.is_messages) {
        messages.insert(messages.end(), prompt.messages.begin(), prompt.messages.end());
    } else {
        messages.push_back({"user", prompt.text});
    }
    return chat_prompt_tokens(model, messages);
}

namespace {

bool has_special_token(const Model& model, const std::vector<llama_token>& tokens) {
    for (llama_token t : tokens) {
        if (llama_vocab_get_attr(model.vocab(), t) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED)) {
            return true;
        }
    }
    return false;
}

void append(std::vector<llama_token>& out, const std::vector<llama_token>& more) {
    out.insert(out.end(), more.begin(), more.end());
}

}  // namespace

std::vector<llama_token> chat_prompt_tokens(const Model& model, const std::vector<ChatMessage>& messages) {
    const std::string prompt = apply_chat_template(model, messages);
    // The template's own text is parsed for special tokens; the messages' text
    // is not, so that "<|im_end|>" typed in a message cannot close its turn.
    // Find the messages in the prompt by rendering markers in their place.
    std::vector<ChatMessage> marked = messages;
    std::vector<std::string> markers(messages.size());
    for (size_t i = 0; i < messages.size(); ++i) {
        markers[i] = "[[llamabatch message " + std::to_string(i) + "]]";
        marked[i].content = markers[i];
    }
    const std::string skeleton = apply_chat_template(model, marked);
    std::vector<std::string_view> frame;  // the template's text around each message
    std::string rebuilt;
    size_t from = 0;
    bool found = true;
    for (size_t i = 0; i < messages.size() && found; ++i) {
        const size_t at = skeleton.find(markers[i], from);
        found = at != std::string::npos;
        if (!found) break;
        frame.push_back(std::string_view(skeleton).substr(from, at - from));
        rebuilt.append(frame.back()).append(messages[i].content);
        from = at + markers[i].size();
    }
    if (found) {
        frame.push_back(std::string_view(skeleton).substr(from));
        rebuilt.append(frame.back());
    }
    if (found && rebuilt == prompt) {
        std::vector<llama_token> out = tokenize_text(model, frame[0], true, true);
        for (size_t i = 0; i < messages.size(); ++i) {
            append(out, tokenize_text(model, messages[i].content, false, false));
            append(out, tokenize_text(model, frame[i + 1], false, true));
        }
        return out;
    }
    // The template changes the messages' text (trims it, say), so they cannot
    // be cut out of the prompt: parse it whole, if no message holds a special token.
    for (size_t i = 0; i < messages.size(); ++i) {
        if (has_special_token(model, tokenize_text(model, messages[i].content, false, true))) {
            throw InvalidArgument("message " + std::to_string(i) +
                                  " contains the text of a special token, and this model's chat template "
                                  "rewrites message text, so it cannot be kept apart as plain text: remove it");
        }
    }
    return tokenize_text(model, prompt, true, true);
}

}  // namespace llamabatch
