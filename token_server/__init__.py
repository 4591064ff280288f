"""Control plane of the talking avatar: join tokens, one supervised bot per room, REST API."""
