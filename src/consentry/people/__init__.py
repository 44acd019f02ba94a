"""People who sign in to the pages: accounts, enrolment, passwords, TOTP, sessions."""
