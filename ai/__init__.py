"""AI drafting: sequences, subject lines, rewrites and fixes drafted by a chat-completions model
or, without one, from built-in blueprints; every draft checked by the pre-flight and applied
only by a person."""
