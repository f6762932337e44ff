"""The control API's routers; `zakaz_common.service.create_app` puts them together."""
