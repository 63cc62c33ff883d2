//! (being written for issue #4)
