"""Operating-system accounts: one per (user, organization) server, one for the data service.

Started as root, Datapilot runs every notebook server under an unprivileged account of
its own, created on first start the way The Littlest JupyterHub does (``useradd``), and
the data service under another. Accounts of one organization share a group, which owns
the organization's ``shared/`` folder. Names are derived, never stored:

- a server's account is ``<prefix><org>_<user>``, or, when that does not fit 32
  characters or the user name has characters an account name cannot, a readable start
  cut to fit and ``__`` with a hash of the user and organization;
- an organization's group is ``<prefix><org>``, hashed the same way after ``--`` when too
  long.

So an account name always holds ``_`` and a group name never does (slugs have none), a
hashed name holds a separator (``__`` or ``--``) that no unhashed one can, and two
installations on one machine stay apart by their prefixes.
"""

from __future__ import annotations

import grp
import hashlib
import logging
import os
import pwd
import re
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

#: the longest account or group name the system tools accept
NAME_MAX = 32
#: what an account prefix may be: it starts every account and group name
PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,7}")
#: a name useradd accepts without --badname (Debian's default rule)
SYSTEM_NAME_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_USER_PART_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_HASH_LEN = 7
NOLOGIN = "/usr/sbin/nologin"

# useradd and friends lock /etc/passwd; one change at a time from this process, and a
# retry when another process holds the lock (exit status 10)
_lock = threading.Lock()


class AccountError(RuntimeError):
    """An account or group could not be made as asked."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:_HASH_LEN]


def account_name(prefix: str, user: str, org: str) -> str:
    """The account the server of ``user`` in organization ``org`` runs under.

    Parameters
    ----------
    prefix : str
        The installation's account prefix (``dp-``).
    user : str
        The JupyterHub user name.
    org : str
        The organization slug (the server's name).
    """
    name = f"{prefix}{org}_{user}"
    if _USER_PART_RE.fullmatch(user) and "__" not in user and len(name) <= NAME_MAX:
        return name
    readable = re.sub(r"[^a-z0-9_-]", "", name)[: NAME_MAX - _HASH_LEN - 2].rstrip("_")
    return f"{readable}__{_digest(user, org)}"


def dashboard_account(prefix: str, org: str) -> str:
    """The account organization ``org``'s dashboard server and kernels run under.

    ``<prefix><org>__dash``: no server account has that form (a hashed one ends in seven
    hex digits after ``__``); too long, ``__d`` and a hash of the organization instead.
    It is in no organization group: it reads its home (the published snapshots) alone.

    Parameters
    ----------
    prefix : str
        The installation's account prefix.
    org : str
        The organization slug.
    """
    return _fit(f"{prefix}{org}__dash", "__d", "_-", "dashboards", org)


def org_group(prefix: str, org: str) -> str:
    """The group of organization ``org``'s accounts (owner of its shared folder).

    Parameters
    ----------
    prefix : str
        The installation's account prefix.
    org : str
        The organization slug.
    """
    return _fit(f"{prefix}{org}", "--", "-", org)


def _fit(name: str, separator: str, strip: str, *hashed: str) -> str:
    """``name``, or when too long its start, ``separator`` and a hash of ``hashed``."""
    if len(name) <= NAME_MAX:
        return name
    cut = name[: NAME_MAX - _HASH_LEN - len(separator)].rstrip(strip)
    return f"{cut}{separator}{_digest(*hashed)}"


def _run(*args: str) -> None:
    for attempt in range(20):
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode == 0:
            return
        if done.returncode != 10:  # 10: /etc/passwd or /etc/group locked by someone else
            break
        time.sleep(0.1 * (attempt + 1))
    raise AccountError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")


def ensure_group(name: str) -> int:
    """The id of group ``name``, created when missing.

    Parameters
    ----------
    name : str
        The group name.
    """
    with _lock:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            _run("groupadd", name)
        return grp.getgrnam(name).gr_gid


def ensure_account(
    name: str,
    home: str | os.PathLike[str],
    comment: str,
    groups: Iterable[str] = (),
    system: bool = False,
) -> pwd.struct_passwd:
    """Account ``name`` with home ``home``, in ``groups``; created when missing.

    The account has no password and ``nologin`` as its shell: nobody logs in as it, it
    only runs what Datapilot starts (a terminal in JupyterLab gets ``$SHELL``).

    Parameters
    ----------
    name : str
        The account name.
    home : path
        Its home directory (not created here).
    comment : str
        The GECOS field: who the account is for.
    groups : iterable of str
        Supplementary groups it must be in (it may be in others).
    system : bool
        A system account (a service's, with an id from the system range).

    Raises
    ------
    AccountError
        The name is taken by an account with another home (another installation or a
        person), or a system tool failed.
    """
    home = os.fspath(home)
    groups = sorted(groups)
    comment = re.sub(r"[^\w .@()+-]", "?", comment)[:100]
    with _lock:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            args = ["useradd", "--no-create-home", "--home-dir", home, "--shell", NOLOGIN]
            args += ["--comment", comment, "--user-group"]
            if system:
                args.append("--system")
            if groups:
                args += ["--groups", ",".join(groups)]
            _run(*args, name)
            return pwd.getpwnam(name)
        if entry.pw_dir != home:
            raise AccountError(
                f"The account {name!r} exists with home {entry.pw_dir}, not {home}: it belongs to"
                " someone else (set DATAPILOT_ACCOUNT_PREFIX to tell installations apart)."
            )
        member_of = {g.gr_name for g in grp.getgrall() if name in g.gr_mem}
        missing = [g for g in groups if g not in member_of]
        if missing:
            _run("usermod", "--append", "--groups", ",".join(missing), name)
        return entry


def own_tree(path: str | os.PathLike[str], uid: int, gid: int) -> None:
    """Give ``path`` and, when it belonged to someone else, everything under it to ``uid``.

    An account re-created after a removal gets a new id; what it owned before (its
    home, the service's storage) comes back to it here. Symbolic links are changed,
    never followed.

    Parameters
    ----------
    path : path
        A directory that belongs to the account.
    uid, gid : int
        The account's ids.
    """
    st = os.lstat(path)
    if (st.st_uid, st.st_gid) == (uid, gid):
        return
    os.lchown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def kill_processes(uid: int) -> int:
    """SIGKILL every process of ``uid`` (what a server leaves behind when it stops).

    Parameters
    ----------
    uid : int
        An account id; never root's.

    Returns
    -------
    int
        How many processes were signalled.
    """
    if uid == 0:
        raise ValueError("refusing to kill root's processes")
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            os.kill(int(entry.name), 9)
            killed += 1
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone meanwhile
    return killed


def remove_installation(home: str | os.PathLike[str], prefix: str) -> list[str]:
    """Remove the accounts whose home is under ``home``, and the groups named ``prefix*``.

    For tests and uninstalling: their processes are killed first; homes stay on disk
    (they are under ``home``).

    Parameters
    ----------
    home : path
        The installation's ``DATAPILOT_HOME``.
    prefix : str
        Its account prefix.

    Returns
    -------
    list of str
        The accounts and groups removed.
    """
    root = Path(home).resolve()
    removed = []
    for entry in pwd.getpwall():
        if entry.pw_uid != 0 and Path(entry.pw_dir).is_relative_to(root):
            kill_processes(entry.pw_uid)
            with _lock:
                _run("userdel", entry.pw_name)
            removed.append(entry.pw_name)
    for group in grp.getgrall():
        if group.gr_name.startswith(prefix) and "_" not in group.gr_name:
            with _lock:
                _run("groupdel", group.gr_name)
            removed.append(group.gr_name)
    return removed


def reachable_by_others(path: str | os.PathLike[str]) -> str | None:
    """The first directory on the way to ``path`` that other accounts cannot search.

    None when every directory from ``/`` to ``path`` (included, when a directory) lets
    others through (``o+x``).

    Parameters
    ----------
    path : path
        A file or directory that unprivileged accounts must reach.
    """
    p = Path(path).resolve()
    for d in [*reversed(p.parents), *([p] if p.is_dir() else [])]:
        if not os.stat(d).st_mode & 0o001:
            return str(d)
    return None
