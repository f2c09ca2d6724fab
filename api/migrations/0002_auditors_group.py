"""The auditors group of SPEC.md exists on every install, not only after
ensure_demo_admin (which production never runs)."""

from __future__ import annotations

from django.db import migrations

AUDITORS_GROUP = "auditors"  # api.permissions.AUDITORS_GROUP, frozen for this migration


def create_group(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    apps.get_model("auth", "Group").objects.get_or_create(name=AUDITORS_GROUP)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
