FROM dailyco/pipecat-base:latest

# Compile bytecode at build time so the first call does not pay for it.
ENV UV_COMPILE_BYTECODE=1
# The uv cache is a mounted volume: copy from it instead of linking.
ENV UV_LINK_MODE=copy
# No variable values in a logged traceback, on any sink the host adds too (the bot's own sink
# says so itself): they would print the caller's number and the keys.
ENV LOGURU_DIAGNOSE=NO

# Dependencies first, from the committed lockfile (a code change keeps this layer cached).
# No dependency groups: tests, linters and the local speech stack (models and a compiled
# llama.cpp) stay out of the image; on Pipecat Cloud the bot uses the cloud services.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-install-project --no-default-groups

# The base image runs app.py, which does `from bot import bot`: copy bot.py, the runtime
# package (only it: the operator's tools and the test kit stay out), the recorded prompts it
# plays, and the agent file with its Python tools (all read at start-up).
COPY ./bot.py bot.py
COPY ./bot_runtime bot_runtime
COPY ./prompts prompts
COPY ./agent.toml agent.toml
COPY ./agent_tools.py agent_tools.py
