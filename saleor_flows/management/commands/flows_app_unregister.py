from django.core.management.base import BaseCommand

from saleor_flows.models import SaleorAppInstallation


class Command(BaseCommand):
    help = ("Forget the Saleor the Dashboard App was installed in (and its stored token), so the App can be "
            "installed in another Saleor. Uninstall it in the old Saleor's Dashboard too.")

    def handle(self, *args, **options):
        rows = list(SaleorAppInstallation.objects.values_list("saleor_api_url", flat=True))
        SaleorAppInstallation.objects.all().delete()
        for url in rows:
            self.stdout.write(f"Forgot the App registration of {url}")
        if not rows:
            self.stdout.write("The App was not registered.")
