# Application image: the FastAPI gateway (default command) and the rasa-sdk action server
# (same image, other command), both from requirements.txt. UNTESTED: docker build could not be
# run where this was written.
#
#   docker build -f deploy/Dockerfile.app -t chatbot-app:$(git rev-parse --short HEAD) .
#   docker run -p 8000:8000 -e RASA_URLS=http://rasa-1:5005,http://rasa-2:5005 \
#              -e ACTION_SERVER_URL=http://actions:5055 chatbot-app:TAG
#   docker run -e SANIC_HOST=0.0.0.0 chatbot-app:TAG \
#              python -m rasa_sdk --actions actions -p 5055          # action server
#
# Both processes are stateless (conversation state lives in rasa's tracker store), so any number
# of containers of each can run behind a load balancer; see docs/deploy.md.
FROM python:3.10-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONPATH=/app \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    SANIC_KEEP_ALIVE_TIMEOUT=60

WORKDIR /app
COPY requirements.txt ./
RUN python -m pip install --upgrade "pip<25" wheel \
 && python -m pip install -r requirements.txt

COPY bot bot
COPY actions actions
COPY procedures procedures
COPY domain.yml endpoints.yml credentials.yml ./

RUN useradd --uid 1001 --home-dir /app --no-create-home app \
 && mkdir -p /app/var && chown -R 1001 /app/var
USER 1001
EXPOSE 8000 5055
CMD ["python", "-m", "bot", "serve", "--host", "0.0.0.0", "--port", "8000"]
