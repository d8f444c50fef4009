//! Non-INVITE server transactions.
