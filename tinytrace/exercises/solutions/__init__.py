"""Reference solutions to the exercises, one module per lesson, named as the learner's
files in ``exercises/``. The suite checks that each passes its check; read one only
after your own attempt has passed (or after a real try)."""
