"""Serve the app: one Streamlit process, or several behind nginx when the machine has the cores for them.

    python -m scripts.serve                          # what `make run` does
    python -m scripts.serve --server.port 8080       # any `streamlit run` option
    DIGIT_ZOO_WEB_PROCESSES=3 python -m scripts.serve

A Streamlit server is one Python process: the script runs of all its
sessions share one core (the GIL), so more cores serve more learners only as
more processes. With one web process (the default below 4 cores, or
DIGIT_ZOO_WEB_PROCESSES=1) this is `streamlit run app.py` itself. With N > 1
(default: one per two cores, at most 8) it starts, and stops together on
Ctrl-C or SIGTERM (or when one of them exits):

- one local Ray head for every web process to train on (unless RAY_ADDRESS
  names a cluster already): left alone, each process would start its own;
- N `streamlit run app.py` processes on free ports of 127.0.0.1, sharing the
  database (DIGIT_ZOO_DATABASE_URL, else the SQLite file);
- Debian's nginx, run as this user from a private folder, on the public
  address and port (8501, or --server.port / --server.address), keeping each
  browser on one process.

Without nginx it says how to install it and serves with one process.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from model_zoo import config

ROOT = Path(__file__).resolve().parents[1]
PROCESSES_VARIABLE = "DIGIT_ZOO_WEB_PROCESSES"
MOST_PROCESSES_BY_DEFAULT = 8  # each holds its own models and caches: a cap for big machines, not a measured best
PUBLIC_PORT = 8501  # Streamlit's own default: `make run` keeps its address whatever the process count
WILDCARDS = ("", "0.0.0.0", "::")  # every interface: Streamlit's default
START_SECONDS = 180  # N fresh web processes and Ray starting at once on a busy machine
STOP_SECONDS = 30  # each process's own clean exit, before it is killed
PR_SET_PDEATHSIG = 1  # linux/prctl.h

# nginx's whole configuration, in the private folder given to `nginx -p`: nothing under /etc is read.
NGINX_CONFIG = """\
{user}daemon off;
worker_processes 1;
pid nginx.pid;
error_log error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    # Which web process served each request, and the browser's sticky key: the last two fields.
    log_format upstream '$remote_addr [$time_local] "$request" $status $request_time $upstream_addr $digit_zoo_web';
    access_log access.log upstream;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    client_max_body_size {upload_mb}m;  # Streamlit's own cap (server.maxUploadSize) and a form's overhead

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' close;
    }}

    # Sticky sessions. A Streamlit session lives in the process that holds its websocket, and so do
    # its media files (/media/…) and uploads (/_stcore/upload_file/…): every request of a browser
    # must reach that one process. The key is a cookie nginx gives each browser on its first request,
    # not its IP address: a school behind one NAT, or a class on one Wi-Fi gateway, would all hash to
    # one process by address. A client without cookies gets a process per request, which only a
    # websocket-only client (scripts/benchmarks/locustfile.py) can live with.
    map $cookie_digit_zoo_web $digit_zoo_web {{
        '' $request_id;
        default $cookie_digit_zoo_web;
    }}
    map $cookie_digit_zoo_web $digit_zoo_new_cookie {{
        '' 'digit_zoo_web=$request_id; Path=/; HttpOnly; SameSite=Lax';
        default '';
    }}

    upstream streamlit {{
        hash $digit_zoo_web consistent;
{servers}
    }}

    server {{
        listen {listen};
        location / {{
            proxy_pass http://streamlit;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;  # /_stcore/stream is a websocket
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;  # with its port: Streamlit checks the websocket's origin against it
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # A websocket is one long request: the board on a projector may stay quiet for hours.
            proxy_read_timeout 1d;
            proxy_send_timeout 1d;
            add_header Set-Cookie $digit_zoo_new_cookie always;
        }}
    }}
}}
"""


def web_processes() -> int:
    """``DIGIT_ZOO_WEB_PROCESSES``, else one per two cores (one below 4 cores), at most 8."""
    default = min(MOST_PROCESSES_BY_DEFAULT, max(1, (os.cpu_count() or 1) // 2))
    return config.whole_number_from_env(PROCESSES_VARIABLE, default)


def find_nginx() -> str | None:
    """Debian's nginx: /usr/sbin is on root's PATH only."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


def split_public_address(streamlit_args: list[str]) -> tuple[str, int, list[str]]:
    """The address and port learners open, taken out of `streamlit run`'s options; the other options."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--server.address", dest="address", default=os.environ.get("STREAMLIT_SERVER_ADDRESS", ""))
    parser.add_argument(
        "--server.port", dest="port", type=int, default=int(os.environ.get("STREAMLIT_SERVER_PORT", PUBLIC_PORT))
    )
    known, rest = parser.parse_known_args(streamlit_args)
    return known.address, known.port, rest


def nginx_config(address: str, port: int, web_ports: list[int], upload_mb: int) -> str:
    listen = f"{_bracketed(address)}:{port}" if address not in ("", "0.0.0.0") else str(port)
    servers = "\n".join(f"        server 127.0.0.1:{web_port};" for web_port in web_ports)
    # As root, nginx's workers would become `nobody` and could not write this user's private folder.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    return NGINX_CONFIG.format(user=user, upload_mb=upload_mb, servers=servers, listen=listen)


def _bracketed(address: str) -> str:
    """An IPv6 address as a URL or nginx's `listen` writes it."""
    return f"[{address}]" if ":" in address else address


def upload_limit_mb() -> int:
    """Streamlit's upload cap (MB) from the project's .streamlit/config.toml, plus a form's overhead."""
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    return int(settings.get("server", {}).get("maxUploadSize", 200)) + 1


def public_urls(address: str, port: int) -> tuple[str, str | None]:
    """The URL to open on this machine, and the one learners open (None when there is none)."""
    from streamlit import net_util  # as Streamlit finds its "Network URL"; not imported before one process's exec

    if address not in WILDCARDS:
        url = f"http://{_bracketed(address)}:{port}"
        return url, url
    network_ip = net_util.get_internal_ip()
    return f"http://localhost:{port}", f"http://{network_ip}:{port}" if network_ip else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_this_process() -> None:
    """In a child before it runs: Linux sends it SIGTERM if this script dies, even by kill -9."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """The children this script started, each in a session of its own: stopped whole, leftovers killed."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen, signal.Signals]] = []

    def start(
        self, name: str, command: list[str], stop_signal: signal.Signals = signal.SIGTERM, **options
    ) -> subprocess.Popen:
        """Start a child; `stop_signal` asks it to stop cleanly."""
        child = subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_this_process, **options)
        self.running.append((name, child, stop_signal))
        return child

    def exited(self) -> str | None:
        """The name of a child that has exited, with its code; None while all run."""
        for name, child, _ in self.running:
            if child.poll() is not None:
                return f"{name} exited with code {child.returncode}"
        return None

    def stop(self) -> None:
        """Each its stop signal, the latest first (nginx, the web processes, Ray); then SIGKILL to what is left."""
        for _, child, stop_signal in reversed(self.running):
            if child.poll() is None:
                child.send_signal(stop_signal)
        deadline = time.monotonic() + STOP_SECONDS
        for name, child, _ in reversed(self.running):
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop within {STOP_SECONDS} s: killed", file=sys.stderr)
                child.kill()
                child.wait()
        for _, child, _ in self.running:
            _kill_session(child.pid)  # what a child left behind: Ray's workers outlive the head by seconds
        self.running.clear()


def _kill_session(session: int) -> None:
    """SIGKILL every live process of a session (a child's and its descendants'), until none is left."""
    deadline = time.monotonic() + STOP_SECONDS
    while (members := _session_members(session)) and time.monotonic() < deadline:
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)  # a killed process takes a moment to go
    if members:
        print(f"processes {members} of session {session} would not die", file=sys.stderr)


def _session_members(session: int) -> list[int]:
    """Live processes of `session`, from /proc (zombies are gone already: they only wait to be reaped)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) ": state, parent, group, session, …
        if fields[0] != "Z" and int(fields[3]) == session:
            members.append(int(entry.name))
    return members


def start_ray_head(processes: Processes, run_dir: Path, env: dict[str, str]) -> str:
    """One local Ray head on 127.0.0.1 with the app's training slots; its address."""
    from model_zoo import cluster, worker  # imports Ray: only when several processes share it

    port = _free_port()
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--disable-usage-stats"]
    command += ["--port", str(port), "--node-ip-address", "127.0.0.1", "--include-dashboard", "false"]
    command += ["--num-cpus", str(cluster.training_slots() * worker.CPUS_PER_SLOT)]
    # Its own folder and free ports: another Ray instance on the machine (a test's, a lab node) may hold the defaults.
    command += ["--temp-dir", str(run_dir / "ray"), "--ray-client-server-port", str(_free_port())]
    command += ["--dashboard-agent-listen-port", str(_free_port())]
    with open(run_dir / "ray.log", "wb") as log:
        processes.start("the Ray head", command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return f"127.0.0.1:{port}"


def wait_until_ready(
    processes: Processes, checks: dict[str, Callable[[], bool]], stop: threading.Event, run_dir: Path
) -> bool:
    """Until every check passes (True) or a stop is asked (False); RuntimeError naming what failed or is late."""
    deadline = time.monotonic() + START_SECONDS
    waiting = dict(checks)
    while waiting:
        if exited := processes.exited():
            raise RuntimeError(f"{exited} while starting (logs in {run_dir})")
        waiting = {name: check for name, check in waiting.items() if not check()}
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {START_SECONDS} s: {', '.join(waiting)} (logs in {run_dir})")
        if waiting and stop.wait(0.5):  # polling servers that are starting: nothing to wait on instead
            return False
    return True


def _answers_http(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    return check


def _accepts_tcp(address: str) -> Callable[[], bool]:
    host, _, port = address.rpartition(":")

    def check() -> bool:
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            return True
        except OSError:
            return False

    return check


def serve_several(count: int, streamlit_args: list[str], nginx: str) -> int:
    """N web processes, a shared Ray head and nginx, until a signal or one of them exits; the exit code."""
    run_dir = Path(tempfile.mkdtemp(prefix="digit-zoo-serve-"))
    stop = threading.Event()
    for stopping in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stopping, lambda *_: stop.set())
    processes = Processes()
    try:
        code = _serve(count, streamlit_args, nginx, run_dir, processes, stop)
    except RuntimeError as error:
        print(f"Stopping: {error}", file=sys.stderr)
        code = 1
    finally:
        processes.stop()
    if code == 0:  # a clean stop: after a failure the logs stay for reading
        shutil.rmtree(run_dir, ignore_errors=True)
    return code


def _serve(
    count: int, streamlit_args: list[str], nginx: str, run_dir: Path, processes: Processes, stop: threading.Event
) -> int:
    address, port, streamlit_args = split_public_address(streamlit_args)
    local_url, network_url = public_urls(address, port)
    env = os.environ.copy()
    # The board's join panel would otherwise show a web process's own port, which only nginx reaches.
    env.setdefault("DIGIT_ZOO_PUBLIC_URL", network_url or local_url)
    checks = {}
    if not env.get("RAY_ADDRESS", "").strip():
        # A private token for this run: `ray start` clusters refuse clients without one (docs/facts.md).
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        env["RAY_ADDRESS"] = start_ray_head(processes, run_dir, env)
        checks["the Ray head"] = _accepts_tcp(env["RAY_ADDRESS"])
    web_ports = [_free_port() for _ in range(count)]
    for number, web_port in enumerate(web_ports, 1):
        command = [sys.executable, "-m", "streamlit", "run", "app.py", *streamlit_args]
        command += ["--server.address", "127.0.0.1", "--server.port", str(web_port), "--server.headless", "true"]
        command += ["--logger.hideWelcomeMessage", "true"]  # its URL is not the one to open: ours is printed
        # SIGINT, as Ctrl-C stops `streamlit run`: on SIGTERM Ray's handler in the process dumps its stack first.
        processes.start(f"web process {number} (port {web_port})", command, signal.SIGINT, cwd=ROOT, env=env)
        checks[f"web process {number}"] = _answers_http(f"http://127.0.0.1:{web_port}/_stcore/health")
    if not wait_until_ready(processes, checks, stop, run_dir):
        return 0

    (run_dir / "temp").mkdir()
    (run_dir / "nginx.conf").write_text(nginx_config(address, port, web_ports, upload_limit_mb()))
    command = [nginx, "-p", f"{run_dir}/", "-c", "nginx.conf", "-e", "error.log"]
    processes.start("nginx", command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(address, _bracketed(address))
    try:
        if not wait_until_ready(
            processes, {"nginx": _answers_http(f"http://{probe}:{port}/_stcore/health")}, stop, run_dir
        ):
            return 0
    except RuntimeError:
        print((run_dir / "error.log").read_text()[-2000:], file=sys.stderr)  # e.g. the port is taken
        raise
    print(
        f"\n  Digit Recogniser: {count} web processes behind nginx, training on Ray at {env['RAY_ADDRESS']}\n"
        f"  Local URL: {local_url}\n"
        + (f"  Network URL: {network_url}\n" if network_url not in (None, local_url) else "")
        + f"  Logs: {run_dir} (nginx's access.log names the process that served each request)\n",
        flush=True,
    )
    while not stop.wait(1.0):
        if exited := processes.exited():
            print(f"Stopping: {exited} (logs in {run_dir})", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    streamlit_args = sys.argv[1:] if argv is None else argv
    count = web_processes()
    nginx = find_nginx()
    if count > 1 and nginx is None:
        print(
            f"nginx is not installed, and {count} web processes need it in front of them: "
            f"apt-get install nginx (Debian, as root). Serving with one process ({PROCESSES_VARIABLE}=1 asks for one).",
            file=sys.stderr,
        )
        count = 1
    os.chdir(ROOT)
    if count == 1:
        os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", "app.py", *streamlit_args])
    return serve_several(count, streamlit_args, nginx)


if __name__ == "__main__":
    sys.exit(main())
