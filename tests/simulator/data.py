"""Seeded, lazily generated users and completions for the Continu API simulator.

Every user is a pure function of the constructor arguments and the user's index. A dataset
stores only a few constants and bounded caches, so creating one generates no user, and a
page of users costs only the users on it. Each aspect of a user (name and email, profile fields,
completions) has its own ``random.Random`` seeded with ``f"{seed}:{index}:<aspect>"``, so the
email index can be built without generating whole records.

The reference page shows only the ``full`` user list type. The simulator defines the other
two as follows:

- ``compact``: ``id``, ``email``, ``first_name``, ``last_name``.
- ``summary``: ``compact`` plus ``full_name``, ``role``, ``job_title``, ``is_suspended`` and
  ``updated_at``.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
import string
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

_T = TypeVar("_T")

STREAMS: tuple[str, ...] = ("assessments", "assignments", "tracks", "workshops")
EDITIONS: tuple[str, ...] = ("2020", "later")

COMPACT_FIELDS: tuple[str, ...] = ("email", "first_name", "id", "last_name")
SUMMARY_FIELDS: tuple[str, ...] = (
    *COMPACT_FIELDS,
    "full_name",
    "is_suspended",
    "job_title",
    "role",
    "updated_at",
)
FULL_FIELDS: tuple[str, ...] = (
    "created_at",
    "email",
    "first_login",
    "first_name",
    "full_name",
    "hired_on",
    "id",
    "image",
    "is_collaborator",
    "is_manager",
    "is_suspended",
    "job_title",
    "language",
    "last_login",
    "last_name",
    "linked_departments",
    "linked_locations",
    "linked_teams",
    "role",
    "suspended_on",
    "updated_at",
    "userid",
)
LIST_TYPE_FIELDS: dict[str, tuple[str, ...] | None] = {
    "compact": COMPACT_FIELDS,
    "summary": SUMMARY_FIELDS,
    "full": None,  # every field of the record, including unknown extra fields from bad data
}
USER_DATE_FIELDS: tuple[str, ...] = (
    "created_at",
    "first_login",
    "hired_on",
    "last_login",
    "suspended_on",
    "updated_at",
)

# With bad_data=True, every user whose index is BAD_DATA_OFFSET modulo BAD_DATA_STRIDE gets one
# kind of corruption, cycling through BAD_DATA_KINDS (see Dataset.bad_data_kind). Such a user has
# at least one item in every completion stream, so that the item-level corruption is visible.
BAD_DATA_STRIDE = 5
BAD_DATA_OFFSET = 2
BAD_DATA_KINDS: tuple[str, ...] = (
    "unparseable_date",
    "year_one",
    "year_out_of_range",
    "empty_string",
    "date_only",
    "numbers_as_strings",
    "unknown_field",
    "null_arrays",
    "unparseable_updated_at",
)

# The user-level and first-item values of each kind. Dataset.bad_data_kind documents them.
_YEAR_ONE = "0001-01-01T00:00:00Z"
_YEAR_51502 = "51502-01-01T00:00:00Z"
_START_FIELD = "<start>"  # stands for start_date or started_date, depending on the edition
_BAD_USER_VALUES: dict[str, dict[str, Any]] = {
    "unparseable_date": {"last_login": "not a date"},
    "year_one": {"hired_on": _YEAR_ONE},
    "year_out_of_range": {"first_login": _YEAR_51502},
    "empty_string": {"suspended_on": ""},
    "date_only": {"hired_on": "2020-04-28", "updated_at": "2020-04-28"},
    "unknown_field": {"legacy_flag": True},
    "null_arrays": {"linked_teams": None},
    "unparseable_updated_at": {"updated_at": "not a date"},
}
_BAD_FIRST_ITEM_VALUES: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "unparseable_date": (
        ("assessments", _START_FIELD, "not a date"),
        ("workshops", "date", "not a date"),
    ),
    "year_one": (("assignments", "due_date", _YEAR_ONE), ("tracks", "completed_date", _YEAR_ONE)),
    "year_out_of_range": (
        ("assessments", "passed_date", _YEAR_51502),
        ("assignments", "completed_date", _YEAR_51502),
    ),
    "empty_string": (("tracks", _START_FIELD, ""), ("workshops", "date", "")),
    "date_only": (
        ("assignments", "assigned_date", "2020-04-28"),
        ("workshops", "date", "2020-04-28"),
    ),
}
_NUMERIC_FIELDS: dict[str, tuple[str, ...]] = {
    "assessments": ("attempts", "score"),
    "tracks": ("progress",),
}

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_ID_START = 1_451_606_400  # 2016-01-01T00:00:00Z: ObjectId timestamp of the first user
_ID_SPAN_SECONDS = 6 * 365 * 86_400  # creation times of all users spread over about six years
_DATA_END = 1_735_603_200  # 2024-12-31T00:00:00Z: no generated date is later
_CATALOG_START = 1_420_070_400  # 2015-01-01T00:00:00Z: ObjectId timestamps of catalog items
_DAY_MS = 86_400_000
_MAX_USERS = 0xFFFFFF  # the 3-byte ObjectId counter encodes the index
_CACHE_SIZE = 4096
_OBJECT_ID_LENGTH = 24

# UTC offsets in minutes with weights. None is written as "Z", 0 as "+00:00".
_OFFSETS: tuple[tuple[int | None, int], ...] = (
    (-360, 30), (-300, 15), (-420, 10), (-480, 10), (None, 12), (0, 8), (330, 7), (60, 5), (600, 3),
)  # fmt: skip

# Names as displayed. Emails use the ASCII form from _ASCII_NAMES, or the name itself.
# Dataset._identity relies on two properties to keep emails unique. No ASCII form contains ".",
# "_", "+", a digit or a space. The lowercase ASCII forms within each list are distinct.
_FIRST_NAMES: tuple[str, ...] = (
    "Theresa", "Stanley", "Ferdinand", "Mark", "José", "Zoë", "Łukasz", "伟", "Søren", "François",
    "Björn", "Siobhán", "Renée", "Anne-Marie", "Priya", "Aarav", "Fatima", "Mohammed", "Chloé",
    "Mateo", "Olga", "Yuki", "Hana", "Kwame", "Amara", "Liam", "Noah", "Emma", "Olivia", "Lucas",
    "Sofía", "Mia", "Ethan", "Isabella", "Jürgen", "Inês", "Dmitri", "美玲", "Ji-woo", "Ngozi",
)  # fmt: skip
_LAST_NAMES: tuple[str, ...] = (
    "Jenkins", "Bond", "Danton", "Schumacher", "O'Brien", "Ørsted", "李", "García", "Müller",
    "Smith-Jones", "Nguyễn", "Kowalski", "D'Angelo", "van der Berg", "Patel", "Okafor", "Kim",
    "Tanaka", "Rossi", "Dubois", "Johansson", "Novák", "Fernández", "Silva", "Cohen", "Haddad",
    "Moreau", "Wójcik", "Brown", "Taylor", "Wilson", "Andersen", "Popescu", "Ivanova", "Mensah",
    "Kaur", "Herrera", "O'Neill", "Lefèvre", "Yılmaz",  # noqa: RUF001 - Turkish dotless i intended
)  # fmt: skip
_ASCII_NAMES: dict[str, str] = {
    "José": "Jose", "Zoë": "Zoe", "Łukasz": "Lukasz", "伟": "Wei", "Søren": "Soren",
    "François": "Francois", "Björn": "Bjorn", "Siobhán": "Siobhan", "Renée": "Renee",
    "Chloé": "Chloe", "Sofía": "Sofia", "Jürgen": "Jurgen", "Inês": "Ines", "美玲": "Meiling",
    "Ørsted": "Orsted", "李": "Li", "García": "Garcia", "Müller": "Muller", "Nguyễn": "Nguyen",
    "van der Berg": "VanDerBerg", "Novák": "Novak", "Fernández": "Fernandez", "Wójcik": "Wojcik",
    "Yılmaz": "Yilmaz", "Lefèvre": "Lefevre",  # noqa: RUF001
}  # fmt: skip
_EMAIL_DOMAINS: tuple[str, ...] = (
    "example.com", "example.com", "example.com", "example.org", "corp.example.net",
    "eu.example.com",
)  # fmt: skip
_EMAIL_TAGS: tuple[str, ...] = ("lms", "continu", "training", "2021", "q3-onboarding")
_JOB_TITLES: tuple[str, ...] = (
    "Marketing Manager", "Account Executive", "Software Engineer", "Data Analyst",
    "Sales Development Representative", "HR Business Partner", "Customer Success Manager",
    "Product Designer", "Ingénieure logiciel", "Vertriebsleiter", "Office Manager", "VP of Sales",
)  # fmt: skip
_LANGUAGES: tuple[tuple[str, int], ...] = (
    ("en", 60), ("es", 10), ("fr", 8), ("de", 8), ("pt-BR", 6), ("ja", 4), ("zh-CN", 4),
)  # fmt: skip
_ROLES: tuple[tuple[str, int], ...] = (("user", 85), ("external", 10), ("admin", 5))
_TOPICS: tuple[str, ...] = (
    "Designing for the Modern Workplace", "Sales Enablement", "Security Awareness",
    "Data Privacy Basics", "Onboarding Essentials", "Leadership Foundations",
    "Customer Success Playbook", "Inclusive Hiring", "Negotiation Skills", "Product Fundamentals",
    "Code of Conduct", "Time Management", "Effective Feedback", "Remote Collaboration",
    "Harassment Prevention", "Sécurité de l'information", "Führung im Wandel", "営業研修",
    "Accessibility 101", "Project Planning",
)  # fmt: skip
_ASSESSMENT_TYPES: tuple[str, ...] = ("Video Coaching", "Quiz", "Exam", "Survey")
_CONTENT_TYPES: tuple[str, ...] = ("Track", "Article", "Video", "Assessment", "Workshop", "Link")
_ASSIGNMENT_STATUSES: tuple[str, ...] = (
    "Completed - On Time", "Completed - On Time", "Completed - Late", "In Progress", "Not Started",
)  # fmt: skip
_WORKSHOP_STATUSES: tuple[str, ...] = ("attended", "attended", "registered", "absent", "waitlisted")
_POOL_SIZES: dict[str, int] = {"departments": 12, "locations": 8, "teams": 24}


def format_timestamp(epoch_ms: int, offset_minutes: int | None) -> str:
    """Format a Unix time in milliseconds as ISO 8601 with milliseconds and a UTC offset.

    Args:
        epoch_ms: milliseconds since 1970-01-01T00:00:00Z.
        offset_minutes: UTC offset of the written local time, or None to write UTC as ``Z``.
    """
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    if offset_minutes is None:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    zone = _timezone_for(offset_minutes)
    return moment.astimezone(zone).isoformat(timespec="milliseconds")


@functools.lru_cache(maxsize=64)
def _timezone_for(offset_minutes: int) -> timezone:
    return timezone(timedelta(minutes=offset_minutes))


def parse_timestamp(value: object) -> float | None:
    """Parse a date-time string as the API sends it into Unix seconds.

    Accepts the formats the simulator emits: ``2018-09-11T17:23:06.667-06:00``, a trailing
    ``Z``, and a date alone (read as midnight UTC). A string without an offset is read as UTC.

    Returns:
        Seconds since the epoch, or None for None, non-strings, empty strings and strings that
        do not parse (for example ``"not a date"`` or a five-digit year).
    """
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    return (moment - _EPOCH).total_seconds()


def is_object_id(text: str) -> bool:
    """Return whether ``text`` is 24 hex digits, the text form of a MongoDB ObjectId."""
    return len(text) == _OBJECT_ID_LENGTH and all(c in string.hexdigits for c in text)


@dataclass(frozen=True)
class UserEntry:
    """A generated user as the server uses it: the full record plus parsed date fields.

    Entries are cached and shared between threads, so callers must not mutate ``record``.
    """

    index: int
    record: Mapping[str, Any]
    epochs: Mapping[str, float | None]  # Unix seconds of each USER_DATE_FIELDS value


@dataclass(frozen=True)
class _CatalogItem:
    item_id: str
    title: str
    kind: str


class Dataset:
    """Deterministic Continu users and their completions, generated on demand per index.

    Users are sorted by ``id``. Ids are 24-character lowercase hex MongoDB ObjectIds whose
    4-byte timestamp increases strictly with the index, so string order equals index order.
    The timestamp is also the user's ``created_at``, as in MongoDB.

    Args:
        seed: seed of every random choice. The same arguments always give the same data.
        users: number of users, at most 16,777,215 (the ObjectId counter encodes the index).
        edition: ``"2020"`` for the reference page's field names, or ``"later"``, where
            assessments and tracks have ``started_date`` in place of ``start_date``.
        bad_data: inject malformed values into a known subset of users and their items, as
            described by ``bad_data_kind``.
        users_without_email: how many users (chosen by the seed) have ``email: null``. They have
            no completions, since completions are looked up by email.
    """

    def __init__(
        self,
        seed: int = 1,
        users: int = 200,
        edition: str = "2020",
        bad_data: bool = False,
        users_without_email: int = 0,
    ) -> None:
        if not 0 <= users <= _MAX_USERS:
            msg = f"users must be between 0 and {_MAX_USERS}, got {users}"
            raise ValueError(msg)
        if edition not in EDITIONS:
            msg = f"edition must be one of {', '.join(EDITIONS)}, got {edition!r}"
            raise ValueError(msg)
        if not 0 <= users_without_email <= users:
            msg = (
                f"users_without_email must be between 0 and users ({users}), "
                f"got {users_without_email}"
            )
            raise ValueError(msg)
        self.seed = seed
        self.edition = edition
        self.bad_data = bad_data
        self._count = users
        self._id_step = max(1, _ID_SPAN_SECONDS // max(users, 1))

        rng = random.Random(f"{seed}:dataset")
        self._machine = rng.getrandbits(40)
        self._counter_base = rng.getrandbits(24)
        self._jitter_salt = rng.getrandbits(32)
        self._pair_count = len(_FIRST_NAMES) * len(_LAST_NAMES)
        self._pair_multiplier = _coprime_multiplier(self._pair_count, rng)
        self._pair_offset = rng.randrange(self._pair_count)

        without_email_rng = random.Random(f"{seed}:without-email")
        self._without_email = frozenset(without_email_rng.sample(range(users), users_without_email))

        self._pools = {name: _make_ids(rng, size) for name, size in _POOL_SIZES.items()}
        self._catalogs = _make_catalogs(rng)

        self._entry_cache = functools.lru_cache(maxsize=_CACHE_SIZE)(self._build_entry)
        self._items_cache = functools.lru_cache(maxsize=_CACHE_SIZE)(self._build_items)
        self._email_index: dict[str, int] | None = None
        self._expected: dict[str, int] | None = None
        self._lock = threading.Lock()

    # Identity and lookup

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(self._count):
            yield self.user(index)

    def object_id(self, index: int) -> str:
        """Return the ObjectId of the user at ``index`` without generating the user."""
        jitter = ((index * 2_654_435_761 + self._jitter_salt) & 0xFFFFFFFF) % self._id_step
        seconds = _ID_START + index * self._id_step + jitter
        counter = (self._counter_base + index) & 0xFFFFFF
        return f"{seconds:08x}{self._machine:010x}{counter:06x}"

    def index_of_id(self, object_id: str) -> int | None:
        """Return the index of the user with this id, or None. Case is ignored."""
        if not is_object_id(object_id):
            return None
        normalized = object_id.lower()
        index = (int(normalized[18:], 16) - self._counter_base) & 0xFFFFFF
        if index < self._count and self.object_id(index) == normalized:
            return index
        return None

    def bisect_id(self, object_id: str, *, inclusive: bool) -> int:
        """Return the index of the first user whose id is after ``object_id``.

        With ``inclusive=True`` a user whose id equals ``object_id`` counts as after it. The id
        need not belong to a user. Comparison is case-insensitive.
        """
        normalized = object_id.lower()
        if inclusive:
            return bisect.bisect_left(range(self._count), normalized, key=self.object_id)
        return bisect.bisect_right(range(self._count), normalized, key=self.object_id)

    def email_of(self, index: int) -> str | None:
        """Return the email of the user at ``index`` without generating the whole user."""
        return self._identity(index)[2]

    def index_of_email(self, email: str) -> int | None:
        """Return the index of the user with this email, compared case-insensitively.

        The first call builds a dict of every email in one pass over all users, which
        generates names and emails only.
        """
        index = self._email_index
        if index is None:
            with self._lock:
                if self._email_index is None:
                    self._email_index = self._build_email_index()
                index = self._email_index
        return index.get(email.lower())

    def has_email(self, index: int) -> bool:
        """Return whether the user at ``index`` has an email (and so can have completions)."""
        return index not in self._without_email

    def bad_data_kind(self, index: int) -> str | None:
        """Return the kind of malformed data injected into the user at ``index``, if any.

        With ``bad_data=True``, users whose index is ``BAD_DATA_OFFSET`` modulo
        ``BAD_DATA_STRIDE`` get one kind each, cycling through ``BAD_DATA_KINDS``:

        - ``unparseable_date``: ``last_login``, the first assessment's start date and the first
          workshop's ``date`` are ``"not a date"``.
        - ``year_one``: ``hired_on``, the first assignment's ``due_date`` and the first track's
          ``completed_date`` are ``"0001-01-01T00:00:00Z"``.
        - ``year_out_of_range``: ``first_login``, the first assessment's ``passed_date`` and
          the first assignment's ``completed_date`` are ``"51502-01-01T00:00:00Z"``.
        - ``empty_string``: ``suspended_on``, the first track's start date and the first
          workshop's ``date`` are ``""``.
        - ``date_only``: ``hired_on``, ``updated_at``, the first assignment's ``assigned_date``
          and the first workshop's ``date`` are ``"2020-04-28"``.
        - ``numbers_as_strings``: every assessment's ``score`` and ``attempts`` and every
          track's ``progress`` are strings such as ``"87"``. A null score becomes ``"87"``.
        - ``unknown_field``: the user and every item have an extra ``"legacy_flag": true``.
        - ``null_arrays``: ``linked_teams`` and every assignment's ``assigned_content`` are null.
        - ``unparseable_updated_at``: ``updated_at`` is ``"not a date"``.
        """
        if not self.bad_data or index % BAD_DATA_STRIDE != BAD_DATA_OFFSET:
            return None
        return BAD_DATA_KINDS[(index // BAD_DATA_STRIDE) % len(BAD_DATA_KINDS)]

    # Users

    def user(self, index: int) -> dict[str, Any]:
        """Return a fresh copy of the full record of the user at ``index``."""
        return _copy_record(self.entry(index).record)

    def entry(self, index: int) -> UserEntry:
        """Return the cached, shared entry of the user at ``index``. Do not mutate it."""
        if message := _check_index(index, self._count):
            raise IndexError(message)
        return self._entry_cache(index)

    # Completions

    def completion_date_field(self, stream: str) -> str:
        """Return the item field that the ``from`` and ``until`` filters of ``stream`` apply to.

        Assessments and tracks use ``start_date``, or ``started_date`` in the later edition.
        """
        if stream in ("assessments", "tracks"):
            return "started_date" if self.edition == "later" else "start_date"
        if stream == "assignments":
            return "assigned_date"
        if stream == "workshops":
            return "date"
        msg = f"unknown stream {stream!r}, expected one of {', '.join(STREAMS)}"
        raise ValueError(msg)

    def completions(self, stream: str, index: int) -> list[dict[str, Any]]:
        """Return fresh copies of the ``stream`` items of the user at ``index``."""
        return [_copy_record(item) for item in self.completion_items(index)[stream]]

    def completion_items(self, index: int) -> Mapping[str, Sequence[Mapping[str, Any]]]:
        """Return the cached, shared items of every stream for one user. Do not mutate them."""
        if message := _check_index(index, self._count):
            raise IndexError(message)
        return self._items_cache(index)

    def expected_counts(self) -> dict[str, int]:
        """Return the number of users and the total items of each stream.

        Item totals count users with an email only, because only they can be requested. The
        first call passes over all users, drawing only the item counts, and caches the result.
        """
        if self._expected is None:
            totals = dict.fromkeys(STREAMS, 0)
            for index in range(self._count):
                if not self.has_email(index):
                    continue
                for stream, count in zip(STREAMS, self._completion_counts(index)[1], strict=True):
                    totals[stream] += count
            self._expected = {"users": self._count, **totals}
        return dict(self._expected)

    # Generation

    def _identity(self, index: int) -> tuple[str, str, str | None]:
        """Return first name, last name and email (None for a user without email).

        The affine map below is a bijection on name pairs, so indices below the pair count get
        distinct (first, last) pairs, and later indices repeat a pair with a numeric suffix
        (the cycle). The local part splits back into first name, separator, last name, cycle
        and tag, because no name contains a separator or digit. So every email is unique,
        compared case-insensitively.
        """
        pair = (index * self._pair_multiplier + self._pair_offset) % self._pair_count
        cycle = index // self._pair_count
        first_name = _FIRST_NAMES[pair % len(_FIRST_NAMES)]
        last_name = _LAST_NAMES[pair // len(_FIRST_NAMES)]
        if index in self._without_email:
            return first_name, last_name, None
        first_ascii = _ASCII_NAMES.get(first_name, first_name)
        last_ascii = _ASCII_NAMES.get(last_name, last_name)

        rng = random.Random(f"{self.seed}:{index}:email")
        suffix = str(cycle) if cycle else ""
        domain = rng.choice(_EMAIL_DOMAINS)
        style = rng.random()
        if style < 0.55:
            local = f"{first_ascii}.{last_ascii}{suffix}".lower()
        elif style < 0.67:
            local = f"{first_ascii}.{last_ascii}{suffix}"
            domain = domain.capitalize()
        elif style < 0.77:
            local = f"{first_ascii}_{last_ascii}{suffix}".lower()
        else:
            tag = rng.choice(_EMAIL_TAGS)
            local = f"{first_ascii}.{last_ascii}{suffix}+{tag}".lower()
        return first_name, last_name, f"{local}@{domain}"

    def _build_email_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for position in range(self._count):
            email = self.email_of(position)
            if email is not None:
                index[email.lower()] = position
        return index

    def _build_entry(self, index: int) -> UserEntry:
        first_name, last_name, email = self._identity(index)
        object_id = self.object_id(index)
        offset = self._utc_offset(index)
        rng = random.Random(f"{self.seed}:{index}:profile")

        created_ms = int(object_id[:8], 16) * 1000 + rng.randrange(1000)
        hired_ms: int | None = None
        if rng.random() < 0.7:
            hired_ms = created_ms - rng.randrange(0, 5 * 365 * _DAY_MS)
        first_login_ms: int | None = None
        last_login_ms: int | None = None
        if rng.random() < 0.85:
            first_login_ms = created_ms + rng.randrange(0, 30 * _DAY_MS)
            first_login_ms = min(first_login_ms, _DATA_END * 1000)
            last_login_ms = rng.randint(first_login_ms, _DATA_END * 1000)
        is_suspended = rng.random() < 0.08
        suspended_ms = rng.randint(created_ms, _DATA_END * 1000) if is_suspended else None
        updated_floor = max(created_ms, last_login_ms or created_ms, suspended_ms or created_ms)
        updated_ms = rng.randint(updated_floor, _DATA_END * 1000)

        teams = self._pick_ids(rng, "teams", rng.choice((0, 1, 1, 2, 3)))
        if index % 10 == 1:  # always some users with an empty list, bad data or not
            teams = []
        record: dict[str, Any] = {
            "created_at": format_timestamp(created_ms, offset),
            "email": email,
            "first_login": _format_optional(first_login_ms, offset),
            "first_name": first_name,
            "full_name": f"{first_name} {last_name}",
            "hired_on": _format_optional(hired_ms, offset),
            "id": object_id,
            "image": _make_image_url(rng) if rng.random() < 0.75 else None,
            "is_collaborator": rng.random() < 0.2,
            "is_manager": rng.random() < 0.15,
            "is_suspended": is_suspended,
            "job_title": rng.choice(_JOB_TITLES) if rng.random() < 0.8 else None,
            "language": _weighted(rng, _LANGUAGES),
            "last_login": _format_optional(last_login_ms, offset),
            "last_name": last_name,
            "linked_departments": self._pick_ids(rng, "departments", rng.choice((0, 1, 1, 2))),
            "linked_locations": self._pick_ids(rng, "locations", rng.choice((0, 1, 1, 1, 2))),
            "linked_teams": teams,
            "role": _weighted(rng, _ROLES),
            "suspended_on": _format_optional(suspended_ms, offset),
            "updated_at": format_timestamp(updated_ms, offset),
            "userid": _make_userid(rng) if rng.random() < 0.75 else None,
        }
        _corrupt_user(record, self.bad_data_kind(index))
        epochs = {name: parse_timestamp(record[name]) for name in USER_DATE_FIELDS}
        return UserEntry(index=index, record=record, epochs=epochs)

    def _utc_offset(self, index: int) -> int | None:
        """Return the UTC offset in minutes of the user's dates (None for ``Z``)."""
        return _weighted(random.Random(f"{self.seed}:{index}:offset"), _OFFSETS)

    def _pick_ids(self, rng: random.Random, pool: str, count: int) -> list[str]:
        return sorted(rng.sample(self._pools[pool], count))

    def _completion_counts(self, index: int) -> tuple[random.Random, tuple[int, int, int, int]]:
        """Draw the item count of every stream, in STREAMS order, from the user's RNG.

        The counts come first, so ``expected_counts`` needs no item generation.
        """
        rng = random.Random(f"{self.seed}:{index}:completions")
        has_items = rng.random() >= 0.2
        counts = (rng.randint(0, 5), rng.randint(0, 4), rng.randint(0, 4), rng.randint(0, 3))
        if self.bad_data_kind(index) is not None:
            counts = (max(1, counts[0]), max(1, counts[1]), max(1, counts[2]), max(1, counts[3]))
        elif not has_items:
            counts = (0, 0, 0, 0)
        if not self.has_email(index):
            counts = (0, 0, 0, 0)
        return rng, counts

    def _build_items(self, index: int) -> dict[str, list[dict[str, Any]]]:
        rng, counts = self._completion_counts(index)
        created_ms = int(self.object_id(index)[:8], 16) * 1000
        window = _TimeWindow(created_ms, _DATA_END * 1000, self._utc_offset(index))
        start_field = "started_date" if self.edition == "later" else "start_date"
        items = {
            "assessments": [
                _make_assessment(rng, window, item, start_field)
                for item in rng.sample(self._catalogs["assessments"], counts[0])
            ],
            "assignments": [
                _make_assignment(rng, window, item, self._catalogs["content"])
                for item in rng.sample(self._catalogs["assignments"], counts[1])
            ],
            "tracks": [
                _make_track(rng, window, item, start_field)
                for item in rng.sample(self._catalogs["tracks"], counts[2])
            ],
            "workshops": [
                _make_workshop(rng, window, item)
                for item in rng.sample(self._catalogs["workshops"], counts[3])
            ],
        }
        for stream_items in items.values():
            stream_items.sort(key=lambda item: item["_sort_ms"])
            for item in stream_items:
                del item["_sort_ms"]
        _corrupt_items(items, self.bad_data_kind(index), start_field)
        return items


@dataclass(frozen=True)
class _TimeWindow:
    """Range of item dates for one user, in Unix milliseconds, and the user's UTC offset."""

    start_ms: int
    end_ms: int
    offset: int | None

    def draw(self, rng: random.Random) -> int:
        return rng.randint(self.start_ms, max(self.start_ms, self.end_ms - 60 * _DAY_MS))

    def format(self, rng: random.Random, epoch_ms: int) -> str:
        # About one date in ten is written in UTC although the user has another offset.
        return format_timestamp(epoch_ms, None if rng.random() < 0.1 else self.offset)


def _make_assessment(
    rng: random.Random, window: _TimeWindow, item: _CatalogItem, start_field: str
) -> dict[str, Any]:
    start_ms = window.draw(rng)
    status = rng.choice(("Passed", "Passed", "Passed", "Failed", "In Progress"))
    passed = status == "Passed"
    if status == "In Progress":
        score = None
        grading = "Not Graded"
    else:
        score = rng.randint(70, 100) if passed else rng.randint(0, 69)
        score = None if rng.random() < 0.1 else score
        grading = rng.choice(("Completed", "Completed", "Pending"))
    passed_ms = start_ms + rng.randrange(60_000, 14 * _DAY_MS) if passed else None
    return {
        "_sort_ms": start_ms,
        "attempts": rng.randint(1, 3),
        "completion_status": status,
        "grading_status": grading,
        "id": item.item_id,
        "passed_date": None if passed_ms is None else window.format(rng, passed_ms),
        "score": score,
        start_field: window.format(rng, start_ms),
        "title": item.title,
        "type": item.kind,
    }


def _make_assignment(
    rng: random.Random,
    window: _TimeWindow,
    item: _CatalogItem,
    content_catalog: list[_CatalogItem],
) -> dict[str, Any]:
    assigned_ms = window.draw(rng)
    due_ms = assigned_ms + rng.randint(3, 30) * _DAY_MS if rng.random() < 0.85 else None
    status = rng.choice(_ASSIGNMENT_STATUSES)
    completed = status.startswith("Completed")
    completed_ms: int | None = None
    if completed:
        late = status == "Completed - Late" and due_ms is not None
        base_ms = due_ms if late and due_ms is not None else assigned_ms
        completed_ms = base_ms + rng.randrange(3_600_000, 10 * _DAY_MS)
    contents = []
    for content in rng.sample(content_catalog, rng.randint(0, 3)):
        done = completed or rng.random() < 0.5
        done_ms = rng.randint(assigned_ms, completed_ms or assigned_ms + 20 * _DAY_MS)
        contents.append(
            {
                "completed_date": window.format(rng, done_ms) if done else None,
                "content_id": content.item_id,
                "content_title": content.title,
                "content_type": content.kind,
            }
        )
    return {
        "_sort_ms": assigned_ms,
        "assigned_content": contents,
        "assigned_date": window.format(rng, assigned_ms),
        "assignment_id": item.item_id,
        "completed": completed,
        "completed_date": None if completed_ms is None else window.format(rng, completed_ms),
        "completion_status": status,
        "due_date": None if due_ms is None else window.format(rng, due_ms),
    }


def _make_track(
    rng: random.Random, window: _TimeWindow, item: _CatalogItem, start_field: str
) -> dict[str, Any]:
    start_ms = window.draw(rng)
    completed = rng.random() < 0.55
    completed_ms = start_ms + rng.randrange(600_000, 30 * _DAY_MS) if completed else None
    return {
        "_sort_ms": start_ms,
        "completed": completed,
        "completed_date": None if completed_ms is None else window.format(rng, completed_ms),
        "duration": rng.randint(1, 240),
        "id": item.item_id,
        "name": item.title,
        "progress": 100 if completed else rng.randint(0, 99),
        start_field: window.format(rng, start_ms),
    }


def _make_workshop(rng: random.Random, window: _TimeWindow, item: _CatalogItem) -> dict[str, Any]:
    date_ms = window.draw(rng)
    first_name = rng.choice(_FIRST_NAMES)[0]
    last_name = rng.choice(_LAST_NAMES)[0]
    return {
        "_sort_ms": date_ms,
        "date": window.format(rng, date_ms),
        "facilitator": f"{first_name} {last_name}",
        "id": item.item_id,
        "status": rng.choice(_WORKSHOP_STATUSES),
        "title": item.title,
    }


def _corrupt_user(record: dict[str, Any], kind: str | None) -> None:
    record.update(_BAD_USER_VALUES.get(kind or "", {}))


def _corrupt_items(
    items: dict[str, list[dict[str, Any]]], kind: str | None, start_field: str
) -> None:
    """Inject the item-level part of a bad-data kind. Such users have items in every stream."""
    if kind is None or not all(items.values()):
        return
    for stream, name, value in _BAD_FIRST_ITEM_VALUES.get(kind, ()):
        items[stream][0][start_field if name == _START_FIELD else name] = value
    for stream, stream_items in items.items():
        for item in stream_items:
            if kind == "unknown_field":
                item["legacy_flag"] = True
            elif kind == "null_arrays" and stream == "assignments":
                item["assigned_content"] = None
            elif kind == "numbers_as_strings":
                for name in _NUMERIC_FIELDS.get(stream, ()):
                    item[name] = "87" if item[name] is None else str(item[name])


def _copy_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Copy a record deeply enough that no mutation of the copy reaches the cache."""
    copy: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, list):
            copy[key] = [
                _copy_record(element) if isinstance(element, dict) else element for element in value
            ]
        else:
            copy[key] = value
    return copy


def _check_index(index: int, count: int) -> str | None:
    if 0 <= index < count:
        return None
    return f"user index {index} is out of range for {count} users"


def _format_optional(epoch_ms: int | None, offset: int | None) -> str | None:
    return None if epoch_ms is None else format_timestamp(epoch_ms, offset)


def _weighted(rng: random.Random, choices: tuple[tuple[_T, int], ...]) -> _T:
    values = [value for value, _ in choices]
    weights = [weight for _, weight in choices]
    return rng.choices(values, weights=weights)[0]


def _make_image_url(rng: random.Random) -> str:
    image_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    return f"https://images.example.com/avatars/{image_id}.jpg"


def _make_userid(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return f"E{rng.randrange(100_000):05d}"
    return f"+1-555-01{rng.randrange(100):02d}"  # 555-0100 to 555-0199 are fictional numbers


def _make_ids(rng: random.Random, count: int) -> list[str]:
    """Return ``count`` distinct ObjectIds with timestamps in 2015, before any user."""
    machine = rng.getrandbits(40)
    counter = rng.getrandbits(24)
    seconds = sorted(rng.sample(range(_CATALOG_START, _ID_START), count))
    return [
        f"{second:08x}{machine:010x}{(counter + n) & 0xFFFFFF:06x}"
        for n, second in enumerate(seconds)
    ]


def _make_catalogs(rng: random.Random) -> dict[str, list[_CatalogItem]]:
    """Build the shared items that users complete, so item ids repeat across users."""
    assessment_ids = _make_ids(rng, 2 * len(_TOPICS))
    assessments = [
        _CatalogItem(
            item_id,
            f"{_TOPICS[n // 2]}: Final Exam" if n % 2 else _TOPICS[n // 2],
            _ASSESSMENT_TYPES[n % len(_ASSESSMENT_TYPES)],
        )
        for n, item_id in enumerate(assessment_ids)
    ]
    assignments = [_CatalogItem(item_id, "", "") for item_id in _make_ids(rng, 30)]
    tracks = [
        _CatalogItem(item_id, f"{topic} Track", "Track")
        for item_id, topic in zip(_make_ids(rng, len(_TOPICS)), _TOPICS, strict=True)
    ]
    workshop_titles = ["Full Zoom Workshop", *(f"{topic} Workshop" for topic in _TOPICS)]
    workshops = [
        _CatalogItem(item_id, title, "Workshop")
        for item_id, title in zip(
            _make_ids(rng, len(workshop_titles)), workshop_titles, strict=True
        )
    ]
    content = []
    for n, item_id in enumerate(_make_ids(rng, 60)):
        kind = _CONTENT_TYPES[n % len(_CONTENT_TYPES)]
        content.append(_CatalogItem(item_id, f"{_TOPICS[n % len(_TOPICS)]} {kind}", kind))
    return {
        "assessments": assessments,
        "assignments": assignments,
        "tracks": tracks,
        "workshops": workshops,
        "content": content,
    }


def _coprime_multiplier(modulus: int, rng: random.Random) -> int:
    """Return a multiplier coprime to ``modulus``, so that multiplying permutes the residues."""
    while True:
        candidate = rng.randrange(1, modulus)
        if math.gcd(candidate, modulus) == 1:
            return candidate
