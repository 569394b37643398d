"""Teaching tools: course assignments made from the chapters' exercises (docs/teaching.md).

``python -m sslbook assignment release 08 09 --lang en --out DIR`` writes a student notebook, an
instructor copy with the solutions and an autograder package (Otter-Grader, for Gradescope);
``python -m sslbook assignment grade SUBMISSION.ipynb ... --out grades.csv`` grades submissions
locally, each in a fresh kernel with a time limit, with hidden checks on fresh random inputs.

Nothing in the library imports this package: sslbook's import graph is unchanged, and the extra
packages it may use (Otter-Grader) are the optional ``[teach]`` extra.

- :mod:`sslbook.teach.spec`: the exercises that can be assigned, their points (the one place to
  change them) and what each assesses;
- :mod:`sslbook.teach.release`: notebooks and the Otter autograder;
- :mod:`sslbook.teach.grading`: the hidden checks, library-use detection and the local grader;
- :mod:`sslbook.teach.runner`: executes one notebook in a fresh kernel (a subprocess);
- :mod:`sslbook.teach.mutations`: a bank of wrong answers and synthetic submissions for tests.
"""
