"""Prompt templates that do not come from a tokenizer: the DeepSeek R1-Zero template, and
`render_code`, the request for one fenced block that ends every code task's prompt.

Base models have no chat template, so training (`data.template: r1`) and `mlx-grpo chat`
both frame a question with the R1-Zero prompt. A conversation of several turns keeps
appending ``" User: ... Assistant:"`` after each answer, so earlier turns stay a prefix of
later prompts (and their KV cache can be reused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

R1_ZERO_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
    "process here </think> <answer> answer here </answer>."
)
R1_ZERO_TURN = " User: {prompt}. Assistant:"
R1_ZERO_TEMPLATE = R1_ZERO_SYSTEM + R1_ZERO_TURN


def render_r1(prompt: str) -> str:
    """The R1-Zero prompt for one question; the model's answer continues after `Assistant:`."""
    return R1_ZERO_TEMPLATE.replace("{prompt}", prompt)


def render_r1_conversation(messages: Sequence[dict[str, Any]]) -> str:
    """Render a chat history in R1-Zero form, ending with `Assistant:` for the next answer.

    A leading system message replaces the R1-Zero preamble; assistant messages are appended
    verbatim (exactly the text the model produced), user messages as new ``User:`` turns.
    """
    text = R1_ZERO_SYSTEM
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            text = content
        elif role == "user":
            text += R1_ZERO_TURN.replace("{prompt}", content)
        else:
            text += content
    return text


def render_plain_conversation(messages: Sequence[dict[str, Any]]) -> str:
    """Render a chat history as bare text, as `data.template: plain` trains on.

    The first question is exactly the prompt (after the system prompt, if any, and a newline);
    each answer continues its question verbatim; later questions start on a new line.
    """
    text = ""
    for message in messages:
        if message["role"] == "assistant":
            text += message["content"]
        else:
            text += ("\n" if text else "") + message["content"]
    return text


# ---------------------------------------------------------------- code tasks

CODE_LANGUAGES = {"c": "C", "cpp": "C++", "python": "Python"}  # row language -> its name
CODE_SYSTEM = (
    "You are an expert programmer. Think briefly about the task, then give the complete code "
    "in one fenced code block."
)
CODE_TEMPLATE = (
    "{task}\n\nReply with the complete {name} code in one fenced code block that starts with "
    "```{fence} and ends with ```, {rules}."
)
CODE_RULES = {
    "c": "with every #include it needs and no main()",
    "cpp": "with every #include it needs and no main()",
    "python": "with every import it needs and no test code",
}


def render_code(task: str, language: str) -> str:
    """A code task's prompt: the task, then the request for one fenced block of `language`
    (c, cpp or python), which is where `code_tests` reads the answer's code from."""
    if language not in CODE_LANGUAGES:
        raise ValueError(f"language must be one of {sorted(CODE_LANGUAGES)}, not {language!r}")
    return CODE_TEMPLATE.format(
        task=task.strip(), name=CODE_LANGUAGES[language], fence=language, rules=CODE_RULES[language]
    )
