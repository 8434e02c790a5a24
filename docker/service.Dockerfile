# One image recipe for every ml-connector process; SERVICE picks the entry point.
#   docker build -f docker/service.Dockerfile --build-arg SERVICE=basware-writer .
FROM python:3.11-slim

ARG SERVICE
ENV SERVICE=${SERVICE} PYTHONUNBUFFERED=1 MLC_HTTP_HOST=0.0.0.0 MLC_HTTP_PORT=8080

WORKDIR /app
COPY constraints.txt ./
COPY shared/ shared/
COPY services/ services/
COPY sandboxes/ sandboxes/
COPY cli/ cli/
RUN pip install --no-cache-dir -c constraints.txt \
        -e shared -e services/visma-reader -e services/basware-writer \
        -e services/webhook-gateway -e services/invoice-follow-up -e services/audit-store \
        -e services/console -e services/reconciler \
        -e sandboxes -e cli

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
CMD ["sh", "-c", "exec \"$SERVICE\""]
