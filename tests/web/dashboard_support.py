"""Shared by the dashboard tests: a person with a login, and a logged-in HTTP client."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from invoicehub.orgs.service import get_organization
from invoicehub.users.service import add_user
from tests.conftest import LiveServer, OrgKeys, create_org

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Person:
    email: str
    password: str
    org: OrgKeys


def add_person(settings: Settings, org: OrgKeys, email: str, *, role: str = "owner") -> Person:
    runtime = Runtime.build(settings)
    try:
        with runtime.database.session(write=True) as session:
            add_user(
                session,
                email=email,
                password=PASSWORD,
                organization=get_organization(session, org.org_id),
                role=role,
            )
            session.commit()
    finally:
        runtime.database.dispose()
    return Person(email=email, password=PASSWORD, org=org)


def new_person(settings: Settings, name: str, *, role: str = "owner") -> Person:
    org = create_org(settings, name=name, verified=False)
    return add_person(settings, org, f"{org.org_id}@example.com", role=role)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(server: LiveServer, person: Person) -> httpx.Client:
    client = server.client(follow_redirects=False)
    page = client.get("/dashboard/login")
    assert page.status_code == 200
    answer = client.post(
        "/dashboard/login",
        data={
            "email": person.email,
            "password": person.password,
            "csrf_token": csrf_of(page.text),
            "next": "/dashboard",
        },
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard"
    return client
