"""Daily reconciliation (对账): the utility's statement and the bank's settlement file compared
with our records, line by line, without loading the file whole.

``rules`` holds the matching rules and knows nothing of files or the database; ``csvfile``
reads a file and refuses malformed input; ``sources`` says what each file is compared with;
``store`` runs it and keeps the report; ``command`` is the command line."""
