"""Reference answers of the exercises that the checkers compare with, one module per chapter.

Private on purpose: the chapters' exercise cells import their checkers from
``sslbook.exercises.chNN``, and those modules do not hold the answers under the exercises' names
(``from sslbook.exercises.ch08 import positive_mask`` fails). A student can still read this package
(the book is open source), so the grader of ``sslbook.teach`` flags a submission whose function
calls into it, or into the library function the exercise asks to re-write (docs/teaching.md,
"Using the library's own implementation"). Every name is re-exported here.
"""

from sslbook.exercises._reference.ch01 import *  # noqa: F403
from sslbook.exercises._reference.ch02 import *  # noqa: F403
from sslbook.exercises._reference.ch04 import *  # noqa: F403
from sslbook.exercises._reference.ch05 import *  # noqa: F403
from sslbook.exercises._reference.ch06 import *  # noqa: F403
from sslbook.exercises._reference.ch07 import *  # noqa: F403
from sslbook.exercises._reference.ch08 import *  # noqa: F403
from sslbook.exercises._reference.ch09 import *  # noqa: F403
from sslbook.exercises._reference.ch10 import *  # noqa: F403
from sslbook.exercises._reference.ch11 import *  # noqa: F403
