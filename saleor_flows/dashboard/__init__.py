"""The Saleor App surface the plugin serves: the App manifest, its register endpoint and the built Dashboard bundle.

A shop admin installs the App with *Apps → Install external app* and the
manifest URL (``…/plugins/global/saleor.flows/app/manifest/``); the Dashboard
then shows the bundle (``static/``, built from ``dashboard-extension/``) in
an iframe and hands it a token through AppBridge. No Node is needed to run
any of it: the built bundle ships in the wheel.
"""
