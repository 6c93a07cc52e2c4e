"""Demo data for local use only (`make run`): accounts and daycares."""

DEMO_PASSWORD = "Demo-1234!"  # noqa: S105 - local demo accounts, documented in the README

# (email, name, groups, daycare_id)
DEMO_USERS = [
    ("parent@example.com", "김하늘 (학부모)", ["parents"], None),
    ("staff@example.com", "이서준 (A00017 교사)", ["staff"], "A00017"),
    ("admin@example.com", "박지민 (관리자)", ["admins", "employees"], None),
    ("user@example.com", "최유진", ["employees"], None),  # agency employees: taskapp
    ("user2@example.com", "정민호", ["employees"], None),
]

# (nursery_id, name, address, area)
NURSERIES = [
    ("A00017", "햇살 어린이집", "서울특별시 마포구 월드컵북로 21", "마포구"),
    ("A00018", "푸른숲 어린이집", "서울특별시 마포구 성미산로 33", "마포구"),
    ("A00021", "새싹 국공립어린이집", "서울특별시 서대문구 연희로 12", "서대문구"),
    ("B00102", "무지개 어린이집", "경기도 성남시 분당구 정자일로 95", "성남시 분당구"),
    ("B00215", "꿈나무 어린이집", "부산광역시 해운대구 센텀중앙로 48", "해운대구"),
]

# places per age class (0세반, 1세반, ... 5세반) of each demo daycare, in childsys
CLASS_PLACES = {
    "A00017": (3, 5, 7, 15, 18, 18),
    "A00018": (3, 5, 7, 10, 10, 10),
    "A00021": (6, 10, 14, 18, 20, 20),
    "B00102": (0, 5, 7, 15, 15, 15),
    "B00215": (3, 5, 7, 14, 20, 20),
}
