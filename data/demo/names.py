"""Names for the demo data: real Ningbo district, street and road names where known, made-up beyond.

Made-up names are built from syllable tables with the caller's random generator, so they are as
deterministic as every other demo value.
"""
import numpy as np

# Districts: English name, grid allocation weight (urban cores), town centre in WGS84 (lon, lat).
# Centres are each district's seat; seed.py checks each lies inside its real outline.
DISTRICTS = {
    "330203": ("Haishu District", 1100, (121.548, 29.872)),
    "330205": ("Jiangbei District", 900, (121.548, 29.902)),
    "330206": ("Beilun District", 700, (121.842, 29.905)),
    "330211": ("Zhenhai District", 550, (121.612, 29.950)),
    "330212": ("Yinzhou District", 1400, (121.548, 29.818)),
    "330213": ("Fenghua District", 400, (121.402, 29.655)),
    "330225": ("Xiangshan County", 165, (121.866, 29.477)),
    "330226": ("Ninghai County", 170, (121.427, 29.288)),
    "330281": ("Yuyao City", 550, (121.152, 30.040)),
    "330282": ("Cixi City", 600, (121.262, 30.172)),
}
TOTAL_GRIDS = 6535
assert sum(w for _, w, _ in DISTRICTS.values()) == TOTAL_GRIDS

# Real street (街道) names, listed from the centre outwards; the generator makes up more when needed.
STREETS = {
    "330203": ["鼓楼", "南门", "江厦", "西门", "月湖", "白云", "段塘", "望春", "石碶", "集士港", "高桥", "古林"],
    "330205": ["中马", "白沙", "孔浦", "文教", "甬江", "庄桥", "洪塘", "慈城"],
    "330206": ["新碶", "大碶", "小港", "霞浦", "柴桥", "戚家山", "春晓", "梅山"],
    "330211": ["招宝山", "蛟川", "骆驼", "庄市", "贵驷", "澥浦"],
    "330212": ["钟公庙", "首南", "中河", "明楼", "百丈", "东胜", "东柳", "白鹤", "福明", "下应", "潘火",
               "新明", "东郊", "梅墟", "邱隘", "福庆"],
    "330213": ["锦屏", "岳林", "江口", "西坞", "萧王庙"],
    "330225": ["丹东", "丹西", "爵溪"],
    "330226": ["跃龙", "桃源", "梅林", "桥头胡"],
    "330281": ["凤山", "阳明", "梨洲", "兰江", "低塘", "朗霞"],
    "330282": ["浒山", "古塘", "白沙路", "宗汉", "坎墩", "孙塘"],
}
# Districts whose made-up subdivisions beyond the named list are towns (镇, codes 101-199).
TOWN_DISTRICTS = {"330213", "330225", "330226", "330281", "330282"}

# Real road names, by district; segments beyond these get made-up names.
ROADS = {
    "330203": ["中山西路", "解放南路", "解放北路", "药行街", "开明街", "环城西路", "柳汀街", "镇明路", "长春路",
               "望春路", "苍松路", "南苑街", "气象路", "永丰路", "丽园南路", "丽园北路", "新典路", "段塘西路"],
    "330205": ["人民路", "江北大道", "大庆北路", "北环东路", "槐树路", "新马路", "双东路", "育才路", "康庄南路",
               "庄桥路", "洪塘中路", "倪家堰路", "大闸路", "泗洲路"],
    "330206": ["新大路", "明州路", "长江路", "太河路", "岷山路", "庐山路", "华山路", "黄山路", "富春江路"],
    "330211": ["车站路", "城河路", "胜利路", "骆兴路", "庄市大道", "沿江路", "镇骆路"],
    "330212": ["中山东路", "百丈路", "天童南路", "四明中路", "江东北路", "宁穿路", "中兴路", "桑田路",
               "嵩江中路", "首南中路", "天童北路", "鄞州大道", "钱湖北路", "惊驾路", "兴宁路", "民安路"],
    "330213": ["南山路", "中山路", "大成路", "岳林路", "长汀路", "金钟路"],
    "330225": ["丹峰路", "天安路", "靖南大街", "新华路", "象山港路"],
    "330226": ["兴宁中路", "时代大道", "金水路", "桃源中路", "气象路"],
    "330281": ["阳明西路", "舜水南路", "新建路", "谭家岭路", "世南路", "北滨江路"],
    "330282": ["青少年宫路", "三北大街", "慈甬路", "新城大道", "孙塘路", "开发大道"],
}

_SYL = list("永福安康和平兴华宁明德新丰盛泰祥瑞光荣春秋鸿嘉胜利金银同心正阳朝晖广济通惠仁义文昌锦绣景云海")
_ROAD_KIND = ["路", "路", "路", "街", "巷", "中路", "东路", "西路", "南路", "北路"]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余杜叶程魏苏吕丁任沈姚卢傅钟")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰飞斌波宁燕鹏辉建国海峰晨颖佳浩宇")
_BRANDS = ["甬", "鄞", "明州", "三江", "天一", "海曙", "四明", "东钱", "月湖", "宁兴", "慈东", "北仑港", "镇明", "江东"]
_TRADES = ["餐饮店", "便利店", "水果店", "面馆", "汽车美容店", "五金店", "药房", "服装店", "奶茶店", "理发店",
           "烘焙坊", "花店", "眼镜店", "超市", "小吃店"]
_OWNERS = ["置业有限公司", "房地产开发有限公司", "商业管理有限公司", "实业有限公司", "物业管理有限公司"]


def pick(rng: np.random.Generator, seq, n: int) -> np.ndarray:
    return np.asarray(seq, dtype=object)[rng.integers(0, len(seq), n)]


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Made-up two- or three-character Chinese personal names."""
    s, g1, g2 = pick(rng, SURNAMES, n), pick(rng, _GIVEN, n), pick(rng, _GIVEN, n)
    three = rng.random(n) < 0.6
    return np.array([a + b + (c if t else "") for a, b, c, t in zip(s, g1, g2, three)], dtype=object)


def made_up_places(rng: np.random.Generator, n: int, taken: set) -> list[str]:
    """Two-syllable place names not already used (for made-up streets and communities)."""
    out = []
    while len(out) < n:
        name = "".join(pick(rng, _SYL, 2))
        if name not in taken and name[0] != name[1]:
            taken.add(name)
            out.append(name)
    return out


def made_up_roads(rng: np.random.Generator, n: int, taken: set) -> list[str]:
    out = []
    while len(out) < n:
        name = "".join(pick(rng, _SYL, 2)) + str(pick(rng, _ROAD_KIND, 1)[0])
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def owner_companies(rng: np.random.Generator, n: int) -> np.ndarray:
    a, b, c = pick(rng, _BRANDS, n), pick(rng, _SYL, n), pick(rng, _OWNERS, n)
    return np.array([f"宁波{x}{y}{z}" for x, y, z in zip(a, b, c)], dtype=object)


def shop_tenants(rng: np.random.Generator, n: int) -> np.ndarray:
    a, b, c = pick(rng, SURNAMES, n), pick(rng, _SYL, n), pick(rng, _TRADES, n)
    return np.array([f"{x}记{y}{z}" for x, y, z in zip(a, b, c)], dtype=object)
