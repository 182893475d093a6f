"""Join codes and join applications: the ``ControlClient`` calls of ADR 0018."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from consortia.sdk.control._models import JoinApplication, JoinCode, Member, Page, R


class ApplicationCalls:
    """The join-code and join-application calls of ``ControlClient``."""

    if TYPE_CHECKING:  # provided by ControlClient
        def _post(self, model: type[R], path: str, body: dict[str, Any]) -> R: ...

        def _get(self, model: type[R], path: str, **params: Any) -> R: ...

        def _page(self, model: type[R], path: str, **params: Any) -> Page[R]: ...

        def _iterate(self, model: type[R], path: str, **params: Any) -> Iterator[R]: ...

        @staticmethod
        def _create(body: dict[str, Any], client_token: str | None) -> dict[str, Any]: ...

        def create_member(self, network_id: str, name: str, *, description: str | None = None,
                          validators: int | None = None, invitation_id: str | None = None,
                          client_token: str | None = None) -> Member: ...

    # --- join codes ------------------------------------------------------------------------

    def create_join_code(self, network_id: str, member_id: str, *,
                         description: str | None = None, expires_in_hours: int | None = None,
                         max_uses: int | None = None,
                         client_token: str | None = None) -> JoinCode:
        """A code to share with a tenant that should apply; ``join_code`` holds its text,
        in this answer only."""
        return self._post(JoinCode, f"/v1/networks/{network_id}/join-codes", self._create(
            {"member_id": member_id, "description": description,
             "expires_in_hours": expires_in_hours, "max_uses": max_uses}, client_token))

    def list_join_codes(self, network_id: str, *, limit: int | None = None,
                        page_token: str | None = None) -> Page[JoinCode]:
        """The caller tenant's codes of the network (without their secrets)."""
        return self._page(JoinCode, f"/v1/networks/{network_id}/join-codes", limit=limit,
                          page_token=page_token)

    def revoke_join_code(self, network_id: str, join_code_id: str) -> JoinCode:
        return self._post(JoinCode,
                          f"/v1/networks/{network_id}/join-codes/{join_code_id}/revoke", {})

    # --- applications ----------------------------------------------------------------------

    def apply_to_join(self, join_code: str, member_name: str, *, message: str | None = None,
                      client_token: str | None = None) -> JoinApplication:
        """Apply with a join code; the application is PENDING until the network's admins
        decide (404 ``join_code_not_found`` for a code that is not usable)."""
        return self._post(JoinApplication, "/v1/join-applications", self._create(
            {"join_code": join_code, "member_name": member_name, "message": message},
            client_token))

    def list_join_applications(self, *, network_id: str | None = None,
                               status: str | None = None, limit: int | None = None,
                               page_token: str | None = None) -> Page[JoinApplication]:
        """The caller tenant's applications or, with ``network_id``, the network's (for
        its admins)."""
        path = ("/v1/join-applications" if network_id is None
                else f"/v1/networks/{network_id}/join-applications")
        return self._page(JoinApplication, path, status=status, limit=limit,
                          page_token=page_token)

    def iter_join_applications(self, *, network_id: str | None = None,
                               status: str | None = None) -> Iterator[JoinApplication]:
        path = ("/v1/join-applications" if network_id is None
                else f"/v1/networks/{network_id}/join-applications")
        return self._iterate(JoinApplication, path, status=status)

    def get_join_application(self, application_id: str) -> JoinApplication:
        return self._get(JoinApplication, f"/v1/join-applications/{application_id}")

    def withdraw_join_application(self, application_id: str) -> JoinApplication:
        return self._post(JoinApplication,
                          f"/v1/join-applications/{application_id}/withdraw", {})

    def accept_join_application(self, network_id: str, application_id: str, member_id: str,
                                *, description: str | None = None) -> JoinApplication:
        """Open the INVITE_TENANT proposal (by the caller's member ``member_id``) that
        decides the application; its ``proposal_id`` is in the answer."""
        body: dict[str, Any] = {"member_id": member_id}
        if description is not None:
            body["description"] = description
        return self._post(JoinApplication, f"/v1/networks/{network_id}/join-applications/"
                                           f"{application_id}/accept", body)

    def reject_join_application(self, network_id: str, application_id: str
                                ) -> JoinApplication:
        return self._post(JoinApplication, f"/v1/networks/{network_id}/join-applications/"
                                           f"{application_id}/reject", {})

    def join_from_application(self, application_id: str, *, member_name: str | None = None,
                              description: str | None = None,
                              client_token: str | None = None) -> Member:
        """Create the member an APPROVED application's invitation allows (named as the
        application asked unless ``member_name``)."""
        app = self.get_join_application(application_id)
        if app.invitation_id is None:
            raise ValueError(f"join application {app.id} is {app.status}: it has no "
                             "invitation to join with")
        return self.create_member(app.network_id, member_name or app.member_name,
                                  description=description, invitation_id=app.invitation_id,
                                  client_token=client_token)
