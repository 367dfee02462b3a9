"""The code-review loop: diff chunks, conversations, tool calls and comments."""
