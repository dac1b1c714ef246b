"""Query/Retrieve SCP over the local store (PS3.4 Annex C): models, request checks, the store
read at query time, C-FIND matching and the service."""
