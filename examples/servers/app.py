"""The app of gunicorn.toml (WSGI: app:wsgi) and uvicorn.toml (ASGI: app:asgi).

Each answers "pid=PID" with the pid of the process that served the request, so that curl shows which worker
took the connection (and the integration tests count the workers that serve).
"""
import os


def _body():
    return ("pid=%d\n" % os.getpid()).encode()


def wsgi(environ, start_response):
    body = _body()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return  # no startup or shutdown work: uvicorn logs that lifespan is unsupported and goes on
    body = _body()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
