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
    return tokenize_text(model.vocab(), text, true, false);
}

std::vector<llama_token> chat_prompt_tokens(const Model& model, const std::vector<ChatMessage>& messages) {
    return tokenize_text(model.vocab(), apply_chat_template(model, messages), true, true);
}

}  // namespace llamabatch
