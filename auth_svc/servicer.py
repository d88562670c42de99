"""AuthService: protobuf in, domain calls, protobuf out. Unimplemented RPCs answer UNIMPLEMENTED."""

from __future__ import annotations

from grpc import aio
from spotify.auth.v1 import auth_pb2, auth_pb2_grpc
from spotify.common.v1 import common_pb2

from auth_svc.objects import UserObjects
from auth_svc.store import AuthStore
from meshkit import ids
from meshkit.context import current_caller
from meshkit.errors import NotFound, Unauthenticated


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, store: AuthStore, objects: UserObjects) -> None:
        self.store = store
        self.objects = objects

    async def GetUser(
        self, request: auth_pb2.GetUserRequest, context: aio.ServicerContext
    ) -> common_pb2.PublicUser:
        account = await self.store.account(ids.parse_id_or_uri(request.user_id, "user"))
        if account is None or account.user.banned:
            raise NotFound(f"user {request.user_id} not found")
        return self.objects.public(account)

    async def GetMe(self, request: auth_pb2.GetMeRequest, context: aio.ServicerContext) -> auth_pb2.User:
        account = await self.store.account(current_caller().require_user())
        if account is None:
            raise Unauthenticated("the session's user no longer exists")
        return self.objects.private(account)
