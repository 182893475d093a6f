"""The API's request and response bodies (pydantic): what the OpenAPI document shows.

Request bodies refuse unknown fields (``extra="forbid"``): a misspelt field is an error,
not silently ignored. Responses are built from the store's rows (``from_attributes``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from consortia.control.store.enums import (
    AccessKeyStatus,
    AuditResult,
    TenantStatus,
    UserRole,
    UserStatus,
)

ClientToken = Annotated[str, Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
    description="Idempotency token: a retry with the same token and parameters returns the "
                "first call's result; the same token with other parameters is a 409 "
                "idempotency_conflict.")]
Username = Annotated[str, Field(min_length=1, max_length=64,
                                pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$",
                                examples=["alice"])]
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$",
                             examples=["alice@example.com"])]
Password = Annotated[str, Field(min_length=8, max_length=1024,
                                description="At least 8 characters; stored as Argon2id.")]
Description = Annotated[str, Field(max_length=256)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- tenant --------------------------------------------------------------------------------


class Tenant(_Out):
    id: str = Field(examples=["ten-7k3q9d0xw2m4c8rt"])
    name: str
    display_name: str
    status: TenantStatus
    created_at: datetime


class User(_Out):
    id: str = Field(examples=["usr-7k3q9d0xw2m4c8rt"])
    username: str
    email: str | None
    role: UserRole
    status: UserStatus
    has_password: bool = Field(description="Whether the user can log in to the console.")
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


class Me(BaseModel):
    tenant: Tenant
    user: User
    auth: Literal["signature", "session"] = Field(
        description="How this request was authenticated.")
    access_key_id: str | None = Field(description="The key that signed the request.")
    session_id: str | None = Field(description="The console session of the request.")


# --- users ---------------------------------------------------------------------------------


class UserCreate(_In):
    username: Username
    role: UserRole
    email: Email | None = None
    password: Password | None = Field(
        default=None, description="Omit for a user who only uses access keys.")
    client_token: ClientToken | None = None


class UserUpdate(_In):
    role: UserRole | None = None
    status: UserStatus | None = None
    email: Email | None = None
    password: Password | None = None

    @model_validator(mode="after")
    def _something(self) -> UserUpdate:
        if self.role is None and self.status is None and self.email is None \
                and self.password is None:
            raise ValueError("give at least one of role, status, email, password")
        return self


class UserList(BaseModel):
    items: list[User]
    next_page_token: str | None


# --- access keys ---------------------------------------------------------------------------


class AccessKey(_Out):
    access_key_id: str = Field(examples=["CKJBSWY3DPEHPK3PXP"])
    user_id: str
    description: str
    status: AccessKeyStatus
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")


class AccessKeyCreated(AccessKey):
    secret: str | None = Field(
        description="The secret, shown in this response only and never stored in plain "
                    "text. A retry with the same client_token returns it again while the key "
                    "has never been used, and null after.")


class AccessKeyCreate(_In):
    description: Description = ""
    user_id: str | None = Field(
        default=None, max_length=64,
        description="Whose key: omit for your own; admins and owners may name another "
                    "user of the tenant.")
    client_token: ClientToken | None = None


class AccessKeyList(BaseModel):
    items: list[AccessKey]
    next_page_token: str | None


# --- sessions ------------------------------------------------------------------------------


class LoginRequest(_In):
    tenant: str = Field(min_length=1, max_length=64, examples=["acme"])
    username: str = Field(min_length=1, max_length=64, examples=["alice"])
    password: str = Field(min_length=1, max_length=1024)


class SessionInfo(BaseModel):
    session_id: str
    tenant: Tenant
    user: User
    expires_at: datetime
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every change made "
                                        "with this session's cookie.")


# --- audit ---------------------------------------------------------------------------------


class AuditRecord(_Out):
    id: str
    tenant_id: str | None
    user_id: str | None
    access_key_id: str | None
    action: str = Field(examples=["user.create"])
    resource_type: str
    resource_id: str | None
    request_id: str
    result: AuditResult
    error_code: str | None
    http_status: int | None
    source_ip: str | None
    created_at: datetime


class AuditList(BaseModel):
    items: list[AuditRecord]
    next_page_token: str | None


class Health(BaseModel):
    status: Literal["ok"]
