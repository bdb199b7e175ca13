"""The "container" sandbox: PostgreSQL of the target's major version in a testcontainers container.

testcontainers is optional (`pip install 'dbguard[container]'`) and needs a Docker engine; both are
checked before anything starts, and each absence is said plainly rather than shown as a traceback.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from dbguard.errors import ConnectionFailure
from dbguard.sandbox.base import EmptyDatabase, Progress, removed_afterwards
from dbguard.sandbox.catalog import DatabaseFacts, connect
from dbguard.sandbox.marker import SandboxMarker, set_marker
from dbguard.targets.url import DatabaseUrl, mask

NO_DOCKER = "no Docker engine found (testcontainers needs one): use --sandbox server or --sandbox local"
NOT_INSTALLED = "the container sandbox needs testcontainers: pip install 'dbguard[container]'"


def docker_engine_problem() -> str | None:
    """Why no Docker engine can be used here, or None when one answers a ping."""
    sockets = [Path("/var/run/docker.sock"), Path.home() / ".docker/run/docker.sock"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        sockets.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "docker.sock")
    if not os.environ.get("DOCKER_HOST") and not any(path.exists() for path in sockets):
        return "DOCKER_HOST is not set and no Docker socket exists"
    try:
        import docker
    except ImportError:
        return "the docker package is not installed"
    try:
        client = docker.from_env()
        try:
            client.ping()
        finally:
            client.close()
    except Exception as error:  # docker raises DockerException, requests errors and OSError alike
        return f"the Docker engine does not answer: {mask(str(error))}"
    return None


@contextmanager
def container_database(facts: DatabaseFacts, on_progress: Progress | None = None) -> Iterator[EmptyDatabase]:
    """An empty PostgreSQL container of the same major version, its database marked, removed afterwards."""
    problem = docker_engine_problem()
    if problem is not None:
        raise ConnectionFailure(f"{NO_DOCKER} ({problem})")
    container_class = _postgres_container_class()
    progress = on_progress or (lambda _message: None)
    image = f"postgres:{facts.server_major}"
    password = secrets.token_hex(16)
    try:
        container = container_class(image=image, username="postgres", password=password, dbname="postgres")
    except Exception as error:  # the Docker client is made here; the engine may have gone since the ping
        raise ConnectionFailure(f"{NO_DOCKER} ({mask(str(error))})") from None
    # stop() removes the container; testcontainers' reaper (Ryuk) also removes it if this process dies.
    with removed_afterwards(container.stop, f"the sandbox container ({image})"):
        progress(f"starting a {image} container")
        try:
            container.start()
        except Exception as error:
            raise ConnectionFailure(f"cannot start a {image} container: {mask(str(error))}") from None
        host, port = container.get_container_host_ip(), int(container.get_exposed_port(5432))
        url = DatabaseUrl(URL.create("postgresql+psycopg", "postgres", password, host, port, "postgres"))
        marker = SandboxMarker.new()
        with closing(connect(url)) as conn:
            set_marker(conn, url.database, marker)
        yield EmptyDatabase(url, f"{image} container at {host}:{port}", marker)


def _postgres_container_class() -> Any:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        try:
            from testcontainers.postgres import PostgresContainer  # older testcontainers 4.x
        except ImportError:
            raise ConnectionFailure(NOT_INSTALLED) from None
    return PostgresContainer
