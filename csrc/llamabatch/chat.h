// Chat prompts through the model's own template (llama.cpp's template support).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "llamabatch/model.h"

namespace llamabatch {

struct ChatMessage {
    std::string role;     // "system", "user", "assistant"
    std::string content;
};

// The prompt text for messages, ending where the assistant's turn begins.
// Throws InvalidArgument if the model has no chat template (a base model) or
// llama.cpp does not know its template.
std::string apply_chat_template(const Model& model, const std::vector<ChatMessage>& messages);

// Tokens of a plain prompt: the model's BOS (if it wants one) and the text,
// with "<|...|>"-like text kept as text.
std::vector<llama_token> plain_prompt_tokens(const Model& model, const std::string& text);

// One prompt as a caller gives it: a text, a list of messages, or token ids
// (a chat prompt already rendered and tokenized, as the Python package does).
struct Prompt {
    bool is_messages = false;
    bool is_tokens = false;
    std::string text;
    std::vector<ChatMessage> messages;
    std::vector<llama_token> tokens;
};

// The tokens a Generator decodes for a prompt. Token ids are taken as they are. Messages always go through the
// model's chat template; a text does when chat is true (as a user message),
// else it is a plain prompt. A system message, if given, comes first in a chat.
std::vector<llama_token> prompt_tokens(const Model& model, const Prompt& prompt, bool chat,
                                       const std::optional<std::string>& system);

// Tokens of a chat prompt: the messages through the model's template. The
// template's special tokens (such as <|im_start|>) are parsed as such; the
// messages' own text never is, so a message cannot close its turn.
std::vector<llama_token> chat_prompt_tokens(const Model& model, const std::vector<ChatMessage>& messages);

}  // namespace llamabatch
