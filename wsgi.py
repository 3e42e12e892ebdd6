"""What gunicorn imports: `gunicorn wsgi:app`. Never starts the scheduler (`flask jobs run` does)."""

from service import create_app

app = create_app()
