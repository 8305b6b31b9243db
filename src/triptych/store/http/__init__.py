"""The store contract over HTTP: the wire table (``routes``), the codec, and the client
(``client.HttpStore``) of the team server. Imported on first use of an ``http(s)://`` URL."""
